// The gRPC load generator, in its own process as bench/load-client is: `connections` closed loops of
// ModelInfer on one channel (as Triton's perf_analyzer drives a server), each call timed.
// Reads one JSON job from stdin, prints one JSON result line (the HTTP client's LoadResult).
import * as grpc from '@grpc/grpc-js';
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

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const job = JSON.parse(Buffer.concat(chunks).toString()) as GrpcLoadJob;
  const request = { ...job.request, raw_input_contents: job.request.raw_input_contents.map((b) => Buffer.from(b, 'base64')) };
  const Client = clientConstructors().inference;
  const client = new Client(job.address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  const method = job.method ?? 'ModelInfer';
  const definition = Client.service[method];
  // Encoded once, as the HTTP load client sends one prebuilt body: protobufjs's encode of a 110 KB field
  // (~0.13 ms a call) is the client's cost, and Triton's C++ clients do it at about memcpy speed.
  const message = definition.requestSerialize(method === 'ModelInfer' ? request : {});
  const once = () => new Promise<boolean>((resolve) =>
    client.makeUnaryRequest(definition.path, (b: Buffer) => b, definition.responseDeserialize, message, (err) => resolve(!err)));
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
  client.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
