// The load generator, in its own process so that the server is measured, not the client: `connections`
// closed loops, each on one keep-alive socket writing prebuilt HTTP/1.1 requests (little CPU per
// request, as autocannon does), each request timed with a monotonic clock (sub-millisecond
// percentiles, which the 1 ms buckets of common tools cannot give for small models).
// Reads one JSON job from stdin, prints one JSON result line.
import * as net from 'node:net';

export interface LoadJob {
  url: string;
  method?: 'POST' | 'GET';
  headers?: Record<string, string>;
  /** Request bodies, base64; the client cycles through them. */
  bodies: string[];
  connections: number;
  durationS: number;
}

export interface LoadResult {
  requests: number;
  throughput: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** CPU the client process used (user + system), so a bench can tell what was left to the server. */
  cpuMs: number;
}

/** One keep-alive connection that sends prebuilt HTTP/1.1 requests and reads answers by Content-Length. */
class Connection {
  private socket: net.Socket | undefined;
  /** What arrived of the answer, joined once it is whole: a large answer comes in many chunks. */
  private chunks: Buffer[] = [];
  private held = 0;
  private answer: { end: number; status: number; close: boolean } | undefined;
  private waiter: { resolve(status: number): void; reject(err: Error): void } | undefined;

  constructor(private readonly url: URL) {}

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(this.url.port), this.url.hostname, () => resolve(socket));
      socket.setNoDelay(true);
      socket.on('data', (chunk) => this.onData(chunk));
      socket.on('error', (err) => this.fail(err));
      socket.on('close', () => this.fail(new Error('connection closed')));
      socket.once('error', reject);
    });
  }

  private fail(err: Error): void {
    this.socket = undefined;
    this.chunks = [];
    this.held = 0;
    this.answer = undefined;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.held += chunk.length;
    if (!this.answer) {
      // The head is in the first chunks: only they are joined while it is read.
      const start = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.chunks = [start];
      const headerEnd = start.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = start.toString('latin1', 0, headerEnd);
      // At a line start: Inference-Header-Content-Length, which OIP answers carry first, is not the body's length.
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      this.answer = { end: headerEnd + 4 + length, status: Number(head.slice(9, 12)), close: /\r\nconnection:\s*close/i.test(head) };
    }
    if (this.held < this.answer.end) return;
    const { end, status, close } = this.answer;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const rest = all.subarray(end);
    this.chunks = rest.length ? [rest] : [];
    this.held = rest.length;
    this.answer = undefined;
    if (close) {
      this.socket?.destroy();
      this.socket = undefined;
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(status);
  }

  close(): void {
    this.socket?.removeAllListeners('close');
    this.socket?.destroy();
    this.socket = undefined;
  }

  async send(request: Buffer, timeoutMs: number): Promise<number> {
    this.socket ??= await this.connect();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket?.destroy();
        reject(new Error('timeout'));
      }, timeoutMs);
      this.waiter = {
        resolve: (status) => (clearTimeout(timer), resolve(status)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.socket!.write(request);
    });
  }
}

function prebuild(url: URL, method: string, headers: Record<string, string>, body: Buffer): Buffer {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: keep-alive', `Content-Length: ${body.length}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

export async function load(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.url);
  const requests = job.bodies.map((b) => prebuild(url, job.method ?? 'POST', job.headers ?? {}, Buffer.from(b, 'base64')));
  const latencies: number[] = [];
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  let next = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(job.durationS * 1e9));
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      const connection = new Connection(url);
      while (process.hrtime.bigint() < end) {
        const t = process.hrtime.bigint();
        try {
          const status = await connection.send(requests[next++ % requests.length], 60_000);
          if (status < 200 || status >= 300) non2xx++;
          else latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch (err) {
          if ((err as Error).message === 'timeout') timeouts++;
          else errors++;
        }
      }
      connection.close();
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(); // start-up included: a bench times the whole client process
  latencies.sort((a, b) => a - b);
  const at = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : NaN);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    requests: latencies.length, throughput: latencies.length / seconds,
    p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), errors, timeouts, non2xx,
    cpuMs: round((cpu.user + cpu.system) / 1000),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

if (require.main === module) {
  readStdin().then((text) => load(JSON.parse(text) as LoadJob)).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
