// Triton's system shared memory without HTTP or threads: regions registered over files in a folder that
// stands for /dev/shm, and a request's inputs read from them and its outputs written to them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SystemSharedMemory, readSharedMemoryInputs, shmFile, writeSharedMemoryOutputs } from '../../src/oip/shared-memory';
import { decodeOipBody, OipModel } from '../../src/oip/request';
import { QuiverError } from '../../src/errors';

let root: string;
let shm: SystemSharedMemory;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-shm-'));
  shm = new SystemSharedMemory(root);
});
afterEach(() => {
  shm.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const kindOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof QuiverError) return err.kind;
    throw err;
  }
  throw new Error('it did not throw');
};

function object(name: string, bytes: number | Buffer): string {
  const file = path.join(root, name);
  fs.writeFileSync(file, typeof bytes === 'number' ? Buffer.alloc(bytes) : bytes);
  return `/${name}`;
}

describe('regions', () => {
  test('register, status, unregister one and all; a name not registered is already gone', () => {
    shm.register('in', object('a', 64), 16, 32);
    shm.register('out', object('b', 8), 0, 8);
    expect(shm.status()).toEqual([{ name: 'in', key: '/a', offset: 16, byte_size: 32 }, { name: 'out', key: '/b', offset: 0, byte_size: 8 }]);
    expect(shm.status('out')).toEqual([{ name: 'out', key: '/b', offset: 0, byte_size: 8 }]);
    shm.unregister('out');
    shm.unregister('never');
    expect(kindOf(() => shm.status('out'))).toBe('SharedMemoryNotFound');
    shm.unregister();
    expect(shm.status()).toEqual([]);
  });

  test('a second region of the same name is refused; so are regions past the object\'s end', () => {
    const key = object('a', 64);
    shm.register('r', key, 0, 64);
    expect(kindOf(() => shm.register('r', key, 0, 8))).toBe('SharedMemoryExists');
    expect(kindOf(() => shm.register('s', key, 32, 40))).toBe('SharedMemory');
    expect(kindOf(() => shm.register('s', key, -1, 8))).toBe('SharedMemory');
    expect(kindOf(() => shm.register('s', key, 0, 1.5))).toBe('SharedMemory');
    expect(kindOf(() => shm.register('s', key, 0, undefined))).toBe('SharedMemory');
  });

  test('keys are one POSIX shared memory name: no paths out of the folder, no links, no missing objects', () => {
    const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-shm-outside-')), 'object');
    fs.writeFileSync(outside, Buffer.alloc(8));
    fs.symlinkSync(outside, path.join(root, 'link'));
    fs.mkdirSync(path.join(root, 'dir'));
    for (const key of [`/../${path.basename(path.dirname(outside))}`, '../x', '/a/b', '', '/', '/..', '/link', '/dir', '/missing', 'x\0y']) {
      expect(kindOf(() => shm.register('r', key, 0, 8))).toBe('SharedMemory');
    }
    expect(() => shmFile(root, '/ok')).not.toThrow();
    expect(shmFile(root, 'ok')).toBe(path.join(root, 'ok'));
    expect(shm.size).toBe(0);
    fs.rmSync(path.dirname(outside), { recursive: true });
  });

  test('reads and writes stay inside the region; an output larger than its size is refused', () => {
    const key = object('a', Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    shm.register('r', key, 2, 6);
    expect([...shm.read({ region: 'r', offset: 1, byteSize: 3 }, 'x')]).toEqual([3, 4, 5]);
    expect(kindOf(() => shm.read({ region: 'r', offset: 4, byteSize: 3 }, 'x'))).toBe('SharedMemory');
    expect(kindOf(() => shm.read({ region: 'nope', offset: 0, byteSize: 1 }, 'x'))).toBe('SharedMemoryNotFound');
    shm.write({ region: 'r', offset: 0, byteSize: 4 }, Buffer.from([90, 91]), 'y');
    expect([...fs.readFileSync(path.join(root, 'a'))]).toEqual([0, 1, 90, 91, 4, 5, 6, 7, 8, 9]);
    expect(kindOf(() => shm.write({ region: 'r', offset: 0, byteSize: 1 }, Buffer.from([1, 2]), 'y'))).toBe('SharedMemory');
  });
});

describe('unregistering a region a request still writes to', () => {
  test('waits for the request, as Triton does: its answer is written, then the file is closed', () => {
    const openFds = () => fs.readdirSync('/proc/self/fd').length;
    const before = openFds();
    shm.register('out', object('out', 8), 0, 8);
    const held = shm.hold({ region: 'out', offset: 0, byteSize: 8 }, 'y');
    shm.unregister('out');
    expect(shm.status()).toEqual([]);
    expect(openFds()).toBe(before + 1);
    // A new region of the name is another one.
    shm.register('out', object('other', 8), 0, 8);
    shm.write(held, f32([7, 8]), 'y');
    expect(fs.readFileSync(path.join(root, 'out'))).toEqual(f32([7, 8]));
    expect(fs.readFileSync(path.join(root, 'other'))).toEqual(Buffer.alloc(8));
    shm.release([held]);
    shm.unregister();
    expect(openFds()).toBe(before);
  });
});

describe('a request through shared memory', () => {
  const model: OipModel = {
    name: 'm',
    inputs: [{ name: 'a', type: 'float32', shape: ['N', 2] }, { name: 'b', type: 'float32', shape: ['N', 2] }, { name: 'c', type: 'int64', shape: [1] }],
    outputs: [{ name: 'y', type: 'float32', shape: ['N', 2] }, { name: 'z', type: 'float32', shape: ['N', 2] }],
    takesImages: false,
  };

  test('an input in a region becomes a binary section beside a binary and a JSON one; outputs are asked for as binary', () => {
    shm.register('in', object('in', Buffer.concat([Buffer.alloc(4), f32([5, 6, 7, 8])])), 4, 16);
    shm.register('out', object('out', 32), 0, 32);
    const header = Buffer.from(JSON.stringify({
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } },
        { name: 'b', datatype: 'FP32', shape: [2, 2], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 16 } },
        { name: 'c', datatype: 'INT64', shape: [1], data: [3] },
      ],
      outputs: [{ name: 'y', parameters: { shared_memory_region: 'out', shared_memory_offset: 16, shared_memory_byte_size: 16 } }, { name: 'z' }],
    }));
    const body = Buffer.concat([header, f32([1, 2, 3, 4])]);
    const rewritten = readSharedMemoryInputs(body, header.length, shm, 1 << 20)!;
    expect(rewritten.headerLength % 8).toBe(0);
    expect([...rewritten.outputs].map(([name, r]) => [name, { region: r.region, offset: r.offset, byteSize: r.byteSize }])).toEqual([['y', { region: 'out', offset: 16, byteSize: 16 }]]);
    shm.release(rewritten.outputs.values());
    const decoded = decodeOipBody(rewritten.body, { headerLength: rewritten.headerLength }, model);
    const values = Object.fromEntries(Object.entries(decoded.feeds).map(([name, t]) => [name, Array.from(t.data as Float32Array | BigInt64Array, Number)]));
    expect(values).toEqual({ a: [1, 2, 3, 4], b: [5, 6, 7, 8], c: [3] });
    const asked = JSON.parse(Buffer.from(rewritten.body.subarray(0, rewritten.headerLength)).toString());
    expect(asked.outputs).toEqual([{ name: 'y', parameters: { binary_data: true } }, { name: 'z' }]);
  });

  test('a JSON body with no binary part gets one; a request naming no shared memory is left alone', () => {
    shm.register('in', object('in', f32([1, 2])), 0, 8);
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 8 } }] }));
    const rewritten = readSharedMemoryInputs(json, undefined, shm, 1 << 20)!;
    expect(rewritten.body.byteLength).toBe(rewritten.headerLength + 8);
    expect(readSharedMemoryInputs(Buffer.from(JSON.stringify({ inputs: [{ name: 'a', data: [1, 2] }] })), undefined, shm, 1 << 20)).toBeUndefined();
  });

  test('a header that only mentions the parameter is left alone; a region named from a header over 1 MiB is refused', () => {
    shm.register('in', object('in', 64), 0, 64);
    const mention = Buffer.from(JSON.stringify({ parameters: { shared_memory_region: 'in' }, inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] }));
    expect(readSharedMemoryInputs(mention, undefined, shm, 1 << 20)).toBeUndefined();
    const big = Buffer.from(JSON.stringify({
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 2], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 8 } },
        { name: 'b', datatype: 'FP32', shape: [1, 300_000], data: new Array(300_000).fill(1.25) },
      ],
    }));
    expect(kindOf(() => readSharedMemoryInputs(big, undefined, shm, 64 << 20))).toBe('SharedMemory');
  });

  test('an output asked for in a region that the answer leaves out is an error, not stale bytes', () => {
    shm.register('out', object('out', 16), 0, 16);
    const header = JSON.stringify({ outputs: [{ name: 'z', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } }] });
    expect(kindOf(() => writeSharedMemoryOutputs(header, f32([1, 2]), new Map([['y', { region: 'out', offset: 0, byteSize: 8 }]]), shm))).toBe('SharedMemory');
  });

  test('refused: data beside a region, a size without a region, classification into a region, an unknown region, past the limit', () => {
    shm.register('in', object('in', 64), 0, 64);
    const request = (inputs: object[], outputs?: object[]) => Buffer.from(JSON.stringify({ inputs, outputs }));
    const shmInput = (extra: object = {}) => ({ name: 'a', datatype: 'FP32', shape: [1, 2], parameters: { shared_memory_region: 'in', shared_memory_byte_size: 8 }, ...extra });
    const run = (body: Buffer, max = 1 << 20) => kindOf(() => readSharedMemoryInputs(body, undefined, shm, max));
    expect(run(request([shmInput({ data: [1, 2] })]))).toBe('SharedMemory');
    expect(run(request([{ name: 'a', parameters: { shared_memory_byte_size: 8 } }]))).toBe('SharedMemory');
    expect(run(request([{ name: 'a', parameters: { shared_memory_region: 'in' } }]))).toBe('SharedMemory');
    expect(run(request([{ name: 'a', parameters: { shared_memory_region: 'nope', shared_memory_byte_size: 8 } }]))).toBe('SharedMemoryNotFound');
    expect(run(request([shmInput()], [{ name: 'y', parameters: { shared_memory_region: 'in', shared_memory_byte_size: 8, classification: 2 } }]))).toBe('SharedMemory');
    expect(run(request([shmInput()], [{ name: 'y', parameters: { shared_memory_region: 'in', shared_memory_offset: 60, shared_memory_byte_size: 8 } }]))).toBe('SharedMemory');
    expect(run(request([shmInput()]), 4)).toBe('PayloadTooLarge');
  });

  test('the answer: outputs for a region are written there and leave the binary part; the others stay', () => {
    shm.register('out', object('out', 16), 0, 16);
    const header = JSON.stringify({
      model_name: 'm',
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
        { name: 'z', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      ],
    });
    const refs = new Map([['y', { region: 'out', offset: 8, byteSize: 8 }]]);
    const answer = writeSharedMemoryOutputs(header, Buffer.concat([f32([1, 2]), f32([3, 4])]), refs, shm);
    expect(JSON.parse(answer.header).outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [2] },
      { name: 'z', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
    ]);
    expect(answer.binary && Buffer.from(answer.binary)).toEqual(f32([3, 4]));
    expect(fs.readFileSync(path.join(root, 'out')).subarray(8)).toEqual(f32([1, 2]));
    const small = new Map([['y', { region: 'out', offset: 0, byteSize: 4 }]]);
    expect(kindOf(() => writeSharedMemoryOutputs(header, Buffer.concat([f32([1, 2]), f32([3, 4])]), small, shm))).toBe('SharedMemory');
  });
});
