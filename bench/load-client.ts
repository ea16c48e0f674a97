// The load generator, in its own process so that the server is measured, not the client: `connections`
// closed loops over keep-alive HTTP connections, each request timed with a monotonic clock (sub-
// millisecond percentiles, which the 1 ms buckets of common tools cannot give for small models).
// Reads one JSON job from argv[2], prints one JSON result line.
import * as http from 'node:http';

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
}

function send(agent: http.Agent, url: URL, method: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method, headers: { ...headers, 'content-length': String(body.length) }, timeout: 60_000 },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function load(job: LoadJob): Promise<LoadResult> {
  const url = new URL(job.url);
  const bodies = job.bodies.map((b) => Buffer.from(b, 'base64'));
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.connections });
  const latencies: number[] = [];
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  let next = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(job.durationS * 1e9));
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (process.hrtime.bigint() < end) {
        const t = process.hrtime.bigint();
        try {
          const status = await send(agent, url, job.method ?? 'POST', job.headers ?? {}, bodies[next++ % bodies.length]);
          if (status < 200 || status >= 300) non2xx++;
          else latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch (err) {
          if ((err as Error).message === 'timeout') timeouts++;
          else errors++;
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : NaN);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    requests: latencies.length, throughput: latencies.length / seconds,
    p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), errors, timeouts, non2xx,
  };
}

if (require.main === module) {
  load(JSON.parse(process.argv[2]) as LoadJob).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
