import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { extractArchive } from '../../src/models/archive';
import { InvalidModelArchiveError } from '../../src/errors';
import { tarGz, zip } from '../fixtures/archives';
import { tempDir } from '../fixtures/server';

const LIMITS = { maxBytes: 1024 * 1024 };

function setup(name: string, data: Buffer) {
  const root = tempDir('archive');
  const file = path.join(root, name);
  fs.writeFileSync(file, data);
  return { root, file, dest: path.join(root, 'out') };
}

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('extractArchive', () => {
  test('unpacks a .tar.gz with folders', async () => {
    const { file, dest } = setup('m.tar.gz', tarGz([{ name: 'MAR-INF/', type: '5' }, { name: 'MAR-INF/MANIFEST.json', content: '{}' }, { name: 'model.onnx', content: 'abc' }]));
    await extractArchive(file, dest, LIMITS);
    expect(fs.readFileSync(path.join(dest, 'model.onnx'), 'utf8')).toBe('abc');
    expect(fs.readFileSync(path.join(dest, 'MAR-INF/MANIFEST.json'), 'utf8')).toBe('{}');
  });

  test('unpacks a zip (.mar)', async () => {
    const { file, dest } = setup('m.mar', zip([{ name: 'MAR-INF/' }, { name: 'MAR-INF/MANIFEST.json', content: '{"a":1}' }, { name: 'model.onnx', content: 'xyz' }]));
    await extractArchive(file, dest, LIMITS);
    expect(listTree(dest)).toEqual(['MAR-INF', 'MAR-INF/MANIFEST.json', 'model.onnx']);
  });

  const hostileTars: [string, Parameters<typeof tarGz>[0], RegExp][] = [
    ['a ../ entry', [{ name: '../evil.txt', content: 'x' }], /outside its root/],
    ['a nested ../ entry', [{ name: 'a/../../evil.txt', content: 'x' }], /outside its root/],
    ['an absolute entry', [{ name: '/tmp/evil.txt', content: 'x' }], /outside its root/],
    ['a symlink', [{ name: 'link', type: '2', linkTarget: '/etc/passwd' }], /SymbolicLink entry/],
    ['a hard link', [{ name: 'link', type: '1', linkTarget: '/etc/passwd' }], /Link entry/],
    ['more bytes than the limit', [{ name: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024) }], /more than 1048576 bytes/],
  ];

  test.each(hostileTars)('refuses a tar with %s and writes nothing', async (_what, entries, message) => {
    const { root, file, dest } = setup('bad.tar.gz', tarGz([{ name: 'model.onnx', content: 'ok' }, ...entries]));
    await expect(extractArchive(file, dest, LIMITS)).rejects.toThrow(message);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readdirSync(root)).toEqual(['bad.tar.gz']);
    expect(fs.existsSync(path.join(path.dirname(root), 'evil.txt'))).toBe(false);
  });

  const hostileZips: [string, Parameters<typeof zip>[0], RegExp][] = [
    ['a ../ entry', [{ name: '../evil.txt', content: 'x' }], /outside its root|invalid relative path/],
    ['an absolute entry', [{ name: '/tmp/evil.txt', content: 'x' }], /outside its root|absolute path/],
    ['a symlink', [{ name: 'link', content: '/etc/passwd', mode: 0o120777 }], /link or special file/],
    ['more bytes than the limit', [{ name: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024) }], /more than 1048576 bytes/],
  ];

  test.each(hostileZips)('refuses a zip with %s and writes nothing', async (_what, entries, message) => {
    const { root, file, dest } = setup('bad.mar', zip([{ name: 'model.onnx', content: 'ok' }, ...entries]));
    const result = extractArchive(file, dest, LIMITS);
    await expect(result).rejects.toBeInstanceOf(InvalidModelArchiveError);
    await expect(result).rejects.toThrow(message);
    expect(fs.readdirSync(root)).toEqual(['bad.mar']);
  });

  test('a compression bomb is stopped while it inflates, not after', async () => {
    // 64 MiB of zeros in 64 entries: about 64 KB of gzip, 1000 times its size.
    const bomb = tarGz(Array.from({ length: 64 }, (_, i) => ({ name: `zeros-${i}.bin`, content: Buffer.alloc(1024 * 1024) })));
    const { root, file, dest } = setup('bomb.tar.gz', bomb);
    await expect(extractArchive(file, dest, { maxBytes: 4 * 1024 ** 3 })).rejects.toThrow(/inflates to more than 16777216 bytes, over 200 times its size/);
    expect(fs.readdirSync(root)).toEqual(['bomb.tar.gz']);
    // The same content is fine for a limit that allows it.
    await expect(extractArchive(file, dest, { maxBytes: 4 * 1024 ** 3, maxRatio: 2000 })).resolves.toBeUndefined();
    expect(fs.readdirSync(dest)).toHaveLength(64);
  });

  test('a zip bomb is refused from its declared sizes before anything is inflated', async () => {
    const { root, file, dest } = setup('bomb.mar', zip([{ name: 'zeros.bin', content: Buffer.alloc(64 * 1024 * 1024), deflate: true }]));
    await expect(extractArchive(file, dest, { maxBytes: 4 * 1024 ** 3 })).rejects.toThrow(/inflates to 67108864 bytes, over 200 times its size/);
    expect(fs.readdirSync(root)).toEqual(['bomb.mar']);
  });

  test('a compressed stream inside the gzip, and a long tail after the tar, are refused', async () => {
    // node-tar sniffs its input: gzip or zstd inside would be inflated on the event loop (zstd threw and
    // ended the process on Node 20).
    for (const [label, magic] of [['gzip', [0x1f, 0x8b]], ['zstd', [0x28, 0xb5, 0x2f, 0xfd]]] as const) {
      const inner = Buffer.concat([Buffer.from(magic), Buffer.alloc(2048)]);
      const { root, file, dest } = setup(`${label}.tar.gz`, zlib.gzipSync(inner));
      await expect(extractArchive(file, dest, LIMITS)).rejects.toThrow(/compressed stream inside its compression/);
      expect(fs.readdirSync(root)).toEqual([`${label}.tar.gz`]);
    }
    const tar = zlib.gunzipSync(tarGz([{ name: 'model.onnx', content: 'ok' }]));
    const tail = setup('tail.tar.gz', zlib.gzipSync(Buffer.concat([tar, Buffer.alloc(600_000, 0x41)])));
    await expect(extractArchive(tail.file, tail.dest, LIMITS)).rejects.toThrow(/more than 20480 bytes after the end of its tar/);
  });

  test('too many entries stop the unpack at the first one past the limit', async () => {
    const many = tarGz(Array.from({ length: 120 }, (_, i) => ({ name: `f${i}`, content: '' })));
    const { file, dest } = setup('many.tar.gz', many);
    await expect(extractArchive(file, dest, { maxBytes: 1024 ** 2, maxEntries: 100 })).rejects.toThrow(/more than 100 entries/);
    expect(fs.existsSync(dest)).toBe(false);
    const manyZip = setup('many.mar', zip(Array.from({ length: 120 }, (_, i) => ({ name: `f${i}`, content: '' }))));
    await expect(extractArchive(manyZip.file, manyZip.dest, { maxBytes: 1024 ** 2, maxEntries: 100 })).rejects.toThrow(/more than 100 entries/);
  });

  test('set-id and world-writable modes in an archive become plain ones', async () => {
    const { file, dest } = setup('modes.tar.gz', tarGz([{ name: 'model.onnx', content: 'x' }, { name: 'tool', content: '#!/bin/sh' }]));
    // Rewrite the second header's mode to 6777 (set-uid, set-gid, sticky, world-writable).
    const raw = zlib.gunzipSync(fs.readFileSync(file));
    raw.write('0006777\0', 1024 + 100);
    let sum = 0;
    raw.write('        ', 1024 + 148);
    for (const b of raw.subarray(1024, 1536)) sum += b;
    raw.write(sum.toString(8).padStart(6, '0') + '\0 ', 1024 + 148);
    fs.writeFileSync(file, zlib.gzipSync(raw));
    await extractArchive(file, dest, LIMITS);
    expect(fs.statSync(path.join(dest, 'tool')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(dest, 'model.onnx')).mode & 0o7777).toBe(0o644);
  });

  test('refuses a file that is no archive, and a truncated one', async () => {
    const plain = setup('x.tar.gz', Buffer.from('not an archive at all'));
    await expect(extractArchive(plain.file, plain.dest, LIMITS)).rejects.toThrow(/not a .tar.gz/);
    const whole = tarGz([{ name: 'model.onnx', content: Buffer.alloc(100_000, 7) }]);
    const cut = setup('cut.tar.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(extractArchive(cut.file, cut.dest, LIMITS)).rejects.toBeInstanceOf(InvalidModelArchiveError);
    expect(fs.readdirSync(cut.root)).toEqual(['cut.tar.gz']);
  });
});
