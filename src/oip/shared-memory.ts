// Triton's system shared memory extension: clients register regions of POSIX shared memory objects
// (files in /dev/shm) by key, then name a region, offset and size in place of a tensor's data. The main
// thread reads inputs into the request as binary sections and writes outputs into the regions, so the
// workers see the binary framing they always decode.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PayloadTooLargeError, SharedMemoryError, SharedMemoryExistsError, SharedMemoryNotFoundError } from '../errors';

export const SYSTEM_SHM_ROOT = '/dev/shm';
/** Each region holds a file descriptor until it is unregistered. */
const MAX_REGIONS = 1024;
const MAX_NAME_LENGTH = 255;

/** Where a tensor's bytes are: `byteSize` bytes at `offset` into a registered region. */
export interface SharedMemoryRef {
  region: string;
  offset: number;
  byteSize: number;
}

/** An output's region, held from the request's start until its answer is written (SystemSharedMemory.hold). */
export interface HeldRef extends SharedMemoryRef {
  readonly held: object;
}

/** As Triton reports a region: its name, the object's key, where in the object it starts, its size. */
export interface RegionStatus {
  name: string;
  key: string;
  offset: number;
  byte_size: number;
}

interface Region extends RegionStatus {
  fd: number;
  /** Requests that will still write into it. */
  users: number;
  /** Unregistered while in use: its file is closed when the last user is done, as Triton defers it. */
  closing: boolean;
}

/**
 * A POSIX shared memory name as shm_open takes it ("/name"): one component, so the file is directly in
 * the root, and a link there is refused when it is opened.
 */
export function shmFile(root: string, key: string): string {
  const name = key.startsWith('/') ? key.slice(1) : key;
  if (name === '' || name === '.' || name === '..' || name.length > MAX_NAME_LENGTH || /[/\0]/.test(name)) {
    throw new SharedMemoryError(`shared memory key ${JSON.stringify(key)} is not a POSIX shared memory name: give "/name", one component of up to ${MAX_NAME_LENGTH} characters`);
  }
  return path.join(root, name);
}

function wholeBytes(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new SharedMemoryError(`${what} must be a whole number of bytes, got ${JSON.stringify(value)}`);
  }
  return value;
}

export class SystemSharedMemory {
  private readonly regions = new Map<string, Region>();

  constructor(private readonly root = SYSTEM_SHM_ROOT) {}

  get size(): number {
    return this.regions.size;
  }

  register(name: string, key: string, offset: unknown, byteSize: unknown): void {
    if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) throw new SharedMemoryError(`a region's name must be a string of 1 to ${MAX_NAME_LENGTH} characters`);
    if (typeof key !== 'string') throw new SharedMemoryError(`region "${name}": "key" must be a string`);
    const start = wholeBytes(offset ?? 0, `region "${name}": "offset"`);
    const bytes = wholeBytes(byteSize, `region "${name}": "byte_size"`);
    if (this.regions.has(name)) throw new SharedMemoryExistsError(`shared memory region "${name}" is already registered: unregister it first`);
    if (this.regions.size >= MAX_REGIONS) throw new SharedMemoryError(`${MAX_REGIONS} shared memory regions are registered: unregister some first`);
    const file = shmFile(this.root, key);
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch (err) {
      throw new SharedMemoryError(`shared memory key ${JSON.stringify(key)} cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): create it with shm_open first`);
    }
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw new SharedMemoryError(`shared memory key ${JSON.stringify(key)} is not a shared memory object`);
      if (start + bytes > stat.size) {
        throw new SharedMemoryError(`region "${name}" (${bytes} bytes at offset ${start}) runs past the end of ${JSON.stringify(key)} (${stat.size} bytes)`);
      }
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    this.regions.set(name, { name, key, offset: start, byte_size: bytes, fd, users: 0, closing: false });
  }

  /** One region, or all with no name; a name not registered is already gone. */
  unregister(name?: string): void {
    const names = name === undefined || name === '' ? [...this.regions.keys()] : [name];
    for (const n of names) {
      const region = this.regions.get(n);
      if (!region) continue;
      this.regions.delete(n);
      if (region.users > 0) region.closing = true;
      else fs.closeSync(region.fd);
    }
  }

  status(name?: string): RegionStatus[] {
    if (name === undefined || name === '') return [...this.regions.values()].map(statusOf);
    const region = this.regions.get(name);
    if (!region) throw new SharedMemoryNotFoundError(`no system shared memory region "${name}" is registered`);
    return [statusOf(region)];
  }

  /** The region a tensor names, checked to hold its bytes. */
  private regionFor(ref: SharedMemoryRef, tensor: string): Region {
    const region = this.regions.get(ref.region);
    if (!region) throw new SharedMemoryNotFoundError(`tensor "${tensor}" names shared memory region "${ref.region}", which is not registered`);
    if (ref.offset + ref.byteSize > region.byte_size) {
      throw new SharedMemoryError(`tensor "${tensor}": ${ref.byteSize} bytes at offset ${ref.offset} run past the end of region "${ref.region}" (${region.byte_size} bytes)`);
    }
    return region;
  }

  check(ref: SharedMemoryRef, tensor: string): void {
    this.regionFor(ref, tensor);
  }

  /** An output's region kept open for the request: an unregister meanwhile waits for `release`. */
  hold(ref: SharedMemoryRef, tensor: string): HeldRef {
    const region = this.regionFor(ref, tensor);
    region.users++;
    return { ...ref, held: region };
  }

  release(refs: Iterable<HeldRef>): void {
    for (const ref of refs) {
      const region = ref.held as Region;
      region.users--;
      if (region.closing && region.users === 0) fs.closeSync(region.fd);
    }
  }

  read(ref: SharedMemoryRef, tensor: string): Buffer {
    const out = Buffer.allocUnsafe(ref.byteSize);
    this.readInto(ref, tensor, out, 0);
    return out;
  }

  /** Reads a tensor's bytes straight into `target` at `at` (the request being built): no copy between. */
  readInto(ref: SharedMemoryRef, tensor: string, target: Uint8Array, at: number): void {
    const region = this.regionFor(ref, tensor);
    let got = 0;
    while (got < ref.byteSize) {
      const n = fs.readSync(region.fd, target, at + got, ref.byteSize - got, region.offset + ref.offset + got);
      if (n === 0) throw new SharedMemoryError(`tensor "${tensor}": region "${ref.region}" holds fewer bytes than registered (the object shrank)`);
      got += n;
    }
  }

  /** Writes an output's bytes; Triton's rule: the size the request gave must hold them. */
  write(ref: SharedMemoryRef | HeldRef, bytes: Uint8Array, tensor: string): void {
    const region = 'held' in ref ? (ref.held as Region) : this.regionFor(ref, tensor);
    if (bytes.byteLength > ref.byteSize) {
      throw new SharedMemoryError(`shared memory size given for output "${tensor}" (${ref.byteSize} bytes) should be at least ${bytes.byteLength} bytes to hold the results`);
    }
    let at = 0;
    while (at < bytes.byteLength) at += fs.writeSync(region.fd, bytes, at, bytes.byteLength - at, region.offset + ref.offset + at);
  }

  close(): void {
    this.unregister();
  }
}

function statusOf(r: Region): RegionStatus {
  return { name: r.name, key: r.key, offset: r.offset, byte_size: r.byte_size };
}

export const SHM_REGION = 'shared_memory_region';
export const SHM_OFFSET = 'shared_memory_offset';
export const SHM_BYTE_SIZE = 'shared_memory_byte_size';

/** A tensor's shared memory parameters, as values: the region, then optional offset and required size. */
export function sharedMemoryRef(tensor: string, region: unknown, offset: unknown, byteSize: unknown): SharedMemoryRef | undefined {
  if (region === undefined) {
    if (offset !== undefined || byteSize !== undefined) throw new SharedMemoryError(`tensor "${tensor}": ${SHM_OFFSET} and ${SHM_BYTE_SIZE} need ${SHM_REGION}`);
    return undefined;
  }
  if (typeof region !== 'string' || region === '') throw new SharedMemoryError(`tensor "${tensor}": ${SHM_REGION} must be a region's name`);
  if (byteSize === undefined) throw new SharedMemoryError(`tensor "${tensor}": ${SHM_BYTE_SIZE} must be given with ${SHM_REGION}`);
  return { region, offset: wholeBytes(offset ?? 0, `tensor "${tensor}": ${SHM_OFFSET}`), byteSize: wholeBytes(byteSize, `tensor "${tensor}": ${SHM_BYTE_SIZE}`) };
}

type Params = Record<string, unknown>;

function paramsOf(tensor: { parameters?: unknown }): Params {
  const p = tensor.parameters;
  return typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as Params) : {};
}

function withoutShm(params: Params): Params {
  const { [SHM_REGION]: _r, [SHM_OFFSET]: _o, [SHM_BYTE_SIZE]: _b, ...rest } = params;
  return rest;
}

function refOfJson(tensor: { name?: unknown; parameters?: unknown }): SharedMemoryRef | undefined {
  const p = paramsOf(tensor);
  return sharedMemoryRef(String(tensor.name), p[SHM_REGION], p[SHM_OFFSET], p[SHM_BYTE_SIZE]);
}

/** A header padded with spaces to 8 bytes, so that the worker reads the first tensor in place. */
export function alignedHeader(json: unknown): Buffer {
  const text = Buffer.from(JSON.stringify(json));
  return text.length % 8 === 0 ? text : Buffer.concat([text, Buffer.alloc(8 - (text.length % 8), 0x20)]);
}

/** A binary section of the request: bytes in hand, or a tensor still in its region. */
export type Section = Uint8Array | { ref: SharedMemoryRef; tensor: string };

/** Header and sections in one buffer the worker can take; regions are read straight into it. */
export function assembleBody(head: Buffer, sections: Section[], shm: SystemSharedMemory | undefined): Buffer {
  const size = (s: Section) => (s instanceof Uint8Array ? s.byteLength : s.ref.byteSize);
  const body = Buffer.allocUnsafe(head.length + sections.reduce((n, s) => n + size(s), 0));
  head.copy(body, 0);
  let at = head.length;
  for (const s of sections) {
    if (s instanceof Uint8Array) body.set(s, at);
    else shm!.readInto(s.ref, s.tensor, body, at);
    at += size(s);
  }
  return body;
}

/** The request the worker gets, and where each output goes (held: release them when it is answered). */
export interface SharedMemoryRequest {
  body: Uint8Array;
  headerLength: number;
  outputs: Map<string, HeldRef>;
}

interface HeaderTensor {
  name?: unknown;
  data?: unknown;
  parameters?: unknown;
}

/** The largest JSON header the main thread parses to find shared memory: tensors' data belongs in regions or binary sections. */
export const MAX_SHARED_MEMORY_HEADER_BYTES = 1024 * 1024;

/**
 * A REST request whose inputs or outputs name shared memory, rewritten: each such input's bytes become
 * a binary section, each such output is asked for as binary data. Undefined when none does (or the
 * header is not JSON: the worker says why).
 */
export function readSharedMemoryInputs(body: Uint8Array, headerLength: number | undefined, shm: SystemSharedMemory, maxBytes: number): SharedMemoryRequest | undefined {
  const header = Buffer.from(body.buffer, body.byteOffset, headerLength ?? body.byteLength);
  if (!header.includes('"shared_memory_')) return undefined;
  if (header.byteLength > MAX_SHARED_MEMORY_HEADER_BYTES) {
    throw new SharedMemoryError(`a request that names shared memory keeps its JSON header under ${MAX_SHARED_MEMORY_HEADER_BYTES} bytes: send its other tensors as binary data`);
  }
  let parsed: { inputs?: unknown; outputs?: unknown };
  try {
    parsed = JSON.parse(header.toString('utf8')) as typeof parsed;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.inputs)) return undefined;
  const sections: Section[] = [];
  let at = headerLength ?? body.byteLength;
  let total = 0;
  let named = false;
  const inputs = (parsed.inputs as HeaderTensor[]).map((input) => {
    if (typeof input !== 'object' || input === null) return input;
    const params = paramsOf(input);
    const ref = refOfJson(input);
    if (!ref) {
      const size = params.binary_data_size;
      if (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0) {
        sections.push(body.subarray(at, at + size));
        at += size;
        total += size;
      }
      return input;
    }
    if (input.data !== undefined || params.binary_data_size !== undefined) {
      throw new SharedMemoryError(`input "${String(input.name)}" names shared memory and also carries data: give one`);
    }
    named = true;
    total += ref.byteSize;
    if (total > maxBytes) throw new PayloadTooLargeError(`the request's tensors pass oip_max_request_size (${maxBytes} bytes)`);
    shm.check(ref, String(input.name));
    sections.push({ ref, tensor: String(input.name) });
    return { ...input, parameters: { ...withoutShm(params), binary_data_size: ref.byteSize } };
  });
  // Bytes past the sections the header names stay, for the worker to refuse as it does any such body.
  if (at < body.byteLength && headerLength !== undefined) sections.push(body.subarray(at));
  const outputs = new Map<string, SharedMemoryRef>();
  const requested = Array.isArray(parsed.outputs) ? (parsed.outputs as HeaderTensor[]).map((output) => {
    if (typeof output !== 'object' || output === null) return output;
    const ref = refOfJson(output);
    if (!ref) return output;
    const name = String(output.name);
    const params = paramsOf(output);
    if (params.classification !== undefined) throw new SharedMemoryError(`output "${name}" cannot take both ${SHM_REGION} and classification`);
    shm.check(ref, name);
    named = true;
    outputs.set(name, ref);
    return { ...output, parameters: { ...withoutShm(params), binary_data: true } };
  }) : parsed.outputs;
  if (!named) return undefined;
  const head = alignedHeader({ ...parsed, inputs, ...(requested !== undefined ? { outputs: requested } : {}) });
  const assembled = assembleBody(head, sections, shm);
  return { body: assembled, headerLength: head.length, outputs: new Map([...outputs].map(([name, ref]) => [name, shm.hold(ref, name)])) };
}

interface AnswerOutput {
  name: string;
  parameters?: Params;
}

/** The worker's answer with the outputs that go to shared memory written there and taken out of it. */
export function writeSharedMemoryOutputs(
  header: string, binary: Uint8Array | undefined, outputs: Map<string, SharedMemoryRef>, shm: SystemSharedMemory,
): { header: string; binary?: Uint8Array } {
  const parsed = JSON.parse(header) as { outputs?: AnswerOutput[] };
  const kept: Uint8Array[] = [];
  const bytes = binary ?? new Uint8Array(0);
  const written = new Set<string>();
  let at = 0;
  for (const output of parsed.outputs ?? []) {
    const size = output.parameters?.binary_data_size;
    if (typeof size !== 'number') continue;
    const section = bytes.subarray(at, at + size);
    at += size;
    const ref = outputs.get(output.name);
    if (!ref) {
      kept.push(section);
      continue;
    }
    shm.write(ref, section, output.name);
    written.add(output.name);
    // As Triton answers: name, datatype and shape only. Its C++ client (and so perf_analyzer) reads any
    // "parameters" of an output as a binary section's and fails on one without binary_data_size.
    const { binary_data_size: _size, ...rest } = output.parameters ?? {};
    if (Object.keys(rest).length > 0) output.parameters = rest;
    else delete output.parameters;
  }
  unwritten(outputs, written);
  return { header: JSON.stringify(parsed), binary: kept.length > 0 ? Buffer.concat(kept) : undefined };
}

/** An output asked for in a region that the answer did not fill: the client would read stale bytes. */
export function unwritten(outputs: Map<string, SharedMemoryRef>, written: Set<string>): void {
  for (const name of outputs.keys()) {
    if (!written.has(name)) throw new SharedMemoryError(`output "${name}" was asked for in shared memory, but the answer has no binary data for it to write`);
  }
}

/** The registry of a server that takes no regions from clients: none listed, nothing to unregister. */
export const NO_REGIONS: Pick<SystemSharedMemory, 'status' | 'unregister'> = new SystemSharedMemory();
