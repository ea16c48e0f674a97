// A load generator in its own process (autocannon), so the server is measured, not the client.
// Reads one JSON job from argv[2], prints one JSON result line.
import autocannon from 'autocannon';

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

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as LoadJob;
  const bodies = job.bodies.map((b) => Buffer.from(b, 'base64'));
  let next = 0;
  const result = await autocannon({
    url: job.url,
    method: job.method ?? 'POST',
    headers: job.headers,
    connections: job.connections,
    pipelining: 1,
    duration: job.durationS,
    timeout: 60,
    requests: [{ setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }) }],
  });
  const out: LoadResult = {
    requests: result.requests.total,
    throughput: result.requests.total / job.durationS,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
