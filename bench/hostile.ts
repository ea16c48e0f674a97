// npm run bench:hostile — the attacks of the hardening issue, against a real server process: a 3.5 GB
// tar.gz bomb in about 3.5 MB, a zip bomb, a tar of 150,000 entries, each registered while a client pings
// back to back (against the same client's pings with nothing else going on, in the same run); a body
// announced as 100 MB; and 19,000 idle sockets with a probe client beside them.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import * as zlib from 'node:zlib';
import { percentile } from './load';
import { addOneModel } from './models';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(size.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return header;
}

/** Writes a tar.gz from a stream of chunks without holding it in memory. */
async function writeTarGz(file: string, parts: () => Generator<Buffer>): Promise<void> {
  const gzip = zlib.createGzip({ level: 9 });
  const out = fs.createWriteStream(file);
  gzip.pipe(out);
  for (const chunk of parts()) if (!gzip.write(chunk)) await once(gzip, 'drain');
  gzip.end(Buffer.alloc(1024));
  await once(out, 'close');
}

const MB = 1024 * 1024;
const ZEROS = Buffer.alloc(MB);

function* zeroFiles(files: number, mbEach: number): Generator<Buffer> {
  for (let f = 0; f < files; f++) {
    yield tarHeader(`weights-${f}.bin`, mbEach * MB);
    for (let i = 0; i < mbEach; i++) yield ZEROS;
  }
}

function* emptyFiles(count: number): Generator<Buffer> {
  for (let f = 0; f < count; f++) yield tarHeader(`f${f}`, 0);
}

/** One deflated entry of `mb` MiB of zeros, sizes declared honestly, as zip bombs are. */
function zipBomb(mb: number): Buffer {
  const deflate = zlib.deflateRawSync(Buffer.alloc(mb * MB), { level: 9 });
  let crc = 0;
  for (let i = 0; i < mb; i++) crc = zlib.crc32(ZEROS, crc);
  const name = Buffer.from('weights.bin');
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(deflate.length, 18);
  local.writeUInt32LE(mb * MB, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE((3 << 8) | 20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(deflate.length, 20);
  central.writeUInt32LE(mb * MB, 24);
  central.writeUInt16LE(name.length, 28);
  central.writeUInt32LE((0o100644 << 16) >>> 0, 38);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + name.length, 12);
  end.writeUInt32LE(30 + name.length + deflate.length, 16);
  return Buffer.concat([local, name, deflate, central, name, end]);
}

function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

interface Probe {
  latencies: number[];
  peakRss: number;
}

/** Pings back to back on one keep-alive connection, and samples the server's RSS, while `work` runs. */
async function probeDuring<T>(base: string, pid: number, work: () => Promise<T>, minMs = 0): Promise<{ result: T; probe: Probe }> {
  const probe: Probe = { latencies: [], peakRss: 0 };
  let done = false;
  const sampler = setInterval(() => (probe.peakRss = Math.max(probe.peakRss, rssOf(pid))), 20);
  const pinger = (async () => {
    const until = Date.now() + minMs;
    while (!done || Date.now() < until) {
      const t = performance.now();
      const r = await fetch(`${base}/ping`);
      await r.arrayBuffer();
      probe.latencies.push(performance.now() - t);
    }
  })();
  const result = await work();
  done = true;
  await pinger;
  clearInterval(sampler);
  return { result, probe };
}

async function firstByteAfterHeaders(port: number, headers: string): Promise<{ ms: number; status: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const t = performance.now();
  socket.write(headers);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  const ms = performance.now() - t;
  socket.destroy();
  return { ms, status: chunk.toString('latin1').split('\r\n')[0] };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-hostile-'));
  const store = path.join(root, 'store');
  fs.mkdirSync(store);
  fs.mkdirSync(path.join(store, 'plain'));
  fs.writeFileSync(path.join(store, 'plain', 'model.onnx'), addOneModel());
  console.log('building the archives (about 3.5 GB of zeros through gzip)...');
  await writeTarGz(path.join(store, 'bomb.tar.gz'), () => zeroFiles(35, 100));
  await writeTarGz(path.join(store, 'many.tar.gz'), () => emptyFiles(150_000));
  fs.writeFileSync(path.join(store, 'bomb.mar'), zipBomb(1024));
  const sizes = ['bomb.tar.gz', 'many.tar.gz', 'bomb.mar'].map((f) => `${f} ${(fs.statSync(path.join(store, f)).size / MB).toFixed(2)} MB`);
  console.log(`archives: ${sizes.join(', ')}`);

  const [port, adminPort] = [await freePort(), await freePort()];
  const server: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--no-supervisor', '--model-store', store, '--work-dir', path.join(root, 'work'),
    '--models', 'plain', '--workers', '2', '--inference-address', `127.0.0.1:${port}`, '--management-address', `127.0.0.1:${adminPort}`, '--grpc-inference-address', '127.0.0.1:0'],
  { env: { PATH: process.env.PATH, QUIVER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/ping`)).ok) break;
      } catch {
        if (i > 600) throw new Error('the server did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const pid = server.pid!;
    const idleRss = rssOf(pid);
    const baseline = await probeDuring(base, pid, () => new Promise((r) => setTimeout(r, 3000)));
    const rows: string[] = ['| case | answer | time to answer | /ping p50 | /ping p99 | /ping max | server RSS growth |', '|---|---|---|---|---|---|---|'];
    const fmt = (p: Probe) => {
      const sorted = [...p.latencies].sort((a, b) => a - b);
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? 0 };
    };
    const b = fmt(baseline.probe);
    rows.push(`| nothing (baseline) | | | ${b.p50.toFixed(2)} ms | ${b.p99.toFixed(2)} ms | ${b.max.toFixed(2)} ms | ${((baseline.probe.peakRss - idleRss) / MB).toFixed(1)} MB |`);
    let worstP99 = 0;
    let worstGrowth = 0;
    let refused = 0;
    for (const file of ['bomb.tar.gz', 'bomb.mar', 'many.tar.gz']) {
      const before = rssOf(pid);
      const t = performance.now();
      const { result, probe } = await probeDuring(base, pid, async () => {
        const r = await fetch(`${admin}/models?url=${file}&model_name=hostile`, { method: 'POST' });
        return { status: r.status, ms: performance.now() - t, body: (await r.json()) as { message?: string } };
      }, 500);
      const p = fmt(probe);
      const growth = Math.max(0, probe.peakRss - before);
      worstP99 = Math.max(worstP99, p.p99);
      worstGrowth = Math.max(worstGrowth, growth);
      if (result.status === 400) refused++;
      rows.push(`| ${file} | ${result.status}: ${(result.body.message ?? '').slice(0, 70)} | ${result.ms.toFixed(0)} ms | ${p.p50.toFixed(2)} ms | ${p.p99.toFixed(2)} ms | ${p.max.toFixed(2)} ms | ${(growth / MB).toFixed(1)} MB |`);
    }
    const big = await firstByteAfterHeaders(port, 'POST /predictions/plain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n');
    rows.push(`| Content-Length: 104857600, nothing sent | ${big.status} | ${big.ms.toFixed(1)} ms | | | | |`);

    const idle: net.Socket[] = [];
    for (let i = 0; i < 19_000; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      idle.push(socket);
      if (i % 500 === 499) await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const t = performance.now();
    let probeOk = 0;
    try {
      const r = await fetch(`${base}/predictions/plain`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":[[1]]}' });
      if (r.ok && JSON.stringify(await r.json()) === '{"y":[[2]]}') probeOk = 1;
    } catch {
      probeOk = 0;
    }
    rows.push(`| 19,000 idle sockets, then a probe request | ${probeOk ? '200, right answer' : 'failed'} | ${(performance.now() - t).toFixed(1)} ms | | | | |`);
    for (const s of idle) s.destroy();

    console.log(rows.join('\n'));
    console.log(`RESULT hostile ping_p99_ms=${worstP99.toFixed(2)} ping_p99_ratio=${(worstP99 / b.p99).toFixed(2)} rss_growth_mb=${(worstGrowth / MB).toFixed(1)} content_length_413_ms=${big.ms.toFixed(1)} idle_sockets_probe_ok=${probeOk} archives_refused=${refused}`);
  } finally {
    server.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
