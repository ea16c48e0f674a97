// The gRPC load generator, in its own process as bench/load-client is: `connections` closed loops of
// unary calls on one HTTP/2 connection (as Triton's perf_analyzer drives a server on one channel), each
// call timed. It writes each call's prebuilt gRPC frame on node:http2 itself, as the HTTP load client
// writes prebuilt requests on a socket. With grpc-js's client, a ModelInfer call at c=1 took ~1 ms
// longer (p50 medians 5.4 against 4.3 ms over four alternating rounds on one server, ServerLive 0.72
// against 0.43 ms): the client's own work, which perf_analyzer's C++ client does not cost.
// Reads one JSON job from stdin, prints one JSON result line (the HTTP client's LoadResult).
import * as http2 from 'node:http2';
import { clientConstructors } from '../src/grpc/protos';
import type { LoadResult } from './load-client';
import type { ModelInferRequest } from '../src/grpc/tensors';

export interface GrpcLoadJob {
  address: string;
  /** ModelInferRequest with raw_input_contents as base64. */
  request: Omit<ModelInferRequest, 'raw_input_contents'> & { raw_input_contents: string[] };
  connections: number;
  durationS: number;
  /** ServerLive: the transport's own round trip, no model. */
  method?: 'ModelInfer' | 'ServerLive';
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

/** A gRPC message on the wire: not compressed (0), its length (big-endian), the message. */
export function grpcFrame(message: Buffer): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/** One unary call: resolves with the response frames' bytes, rejects on a grpc-status other than 0. */
export function unaryCall(session: http2.ClientHttp2Session, path: string, frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    // A call that fails at once answers with headers only (a "trailers-only" response).
    let status: string | undefined;
    stream.on('response', (headers) => (status = headers['grpc-status'] as string | undefined));
    stream.on('trailers', (trailers) => (status = trailers['grpc-status'] as string | undefined));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => (status === '0' ? resolve(Buffer.concat(chunks)) : reject(new Error(`grpc-status ${status}`))));
    stream.on('error', reject);
    // A stream reset without an error (or cut by GOAWAY) ends with neither: it is a failed call. Settled calls ignore it.
    stream.on('close', () => reject(new Error(`stream closed (code ${stream.rstCode}) before the call ended`)));
    stream.end(frame);
  });
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const job = JSON.parse(Buffer.concat(chunks).toString()) as GrpcLoadJob;
  const request = { ...job.request, raw_input_contents: job.request.raw_input_contents.map((b) => Buffer.from(b, 'base64')) };
  const method = job.method ?? 'ModelInfer';
  const definition = clientConstructors().inference.service[method];
  const frame = grpcFrame(definition.requestSerialize(method === 'ModelInfer' ? request : {}));
  // Room for answers as large as the requests, per stream and per connection, without waiting on window updates.
  const session = http2.connect(`http://${job.address}`, { settings: { initialWindowSize: 1 << 24 } });
  await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
  session.setLocalWindowSize(1 << 24);
  // A session error fails the calls on it (their streams close); it must not end the process.
  session.on('error', () => undefined);
  const once = () => unaryCall(session, definition.path, frame).then(() => true, () => false);
  await once();
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const end = started + job.durationS * 1000;
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await once()) latencies.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(); // start-up included: a bench times the whole client process
  latencies.sort((a, b) => a - b);
  const result: LoadResult = {
    requests: latencies.length, throughput: latencies.length / elapsed,
    p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99),
    errors, timeouts: 0, non2xx: 0, cpuMs: (cpu.user + cpu.system) / 1000,
  };
  session.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
