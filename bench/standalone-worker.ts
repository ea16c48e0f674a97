// One model's pipeline alone in its own thread, the way one standalone process would run it: the same
// session settings, preprocessing and postprocessing as a Quiver worker, requests one after another.
// `clients` closed-loop clients share that one lane, so a latency includes waiting for it.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { widenConnectionWindows, widenStreamWindow } from '../src/grpc/flow-control';
import { serviceDefinitions } from '../src/grpc/protos';
import { ModelInferRequest, inferRequestBody, inferResponse } from '../src/grpc/tensors';
import { parseModelConfig } from '../src/models/model-config';
import { selectImageKernels } from '../src/preprocess/kernels';
import { preprocessImage } from '../src/preprocess/image';
import { runInference } from '../src/workers/inference';
import type { OipFraming } from '../src/oip/request';
import type { InferResult, ModelSpec } from '../src/workers/messages';
import { SessionCache } from '../src/workers/session-cache';

export interface StandaloneJob {
  modelDir: string;
  contentType: string;
  body: Uint8Array;
  clients: number;
  seconds: number;
  /** Also time onnxruntime's run alone on the prepared tensor, this many times. */
  ortRuns?: number;
  /**
   * Serve the pipeline over HTTP instead (node:http, POST any path, one request at a time), as a
   * standalone one-model server would: posts { port }, and stops on the message 'stop'.
   */
  serve?: boolean;
  /** Serve it as a one-model grpc-js server instead: ModelInfer only, the request decoded as Quiver's gRPC path does. */
  serveGrpc?: boolean;
  /** The body is an OIP request (binary when headerLength is set), as `inference-header-content-length` says. */
  oip?: OipFraming;
  /**
   * Served requests do no model work: the thread busy-waits this long, then gives the pipeline's first
   * answer. A server whose work takes as long as the model's run, with nothing else of its own: the
   * round trip this machine, this HTTP stack and this load client cost a request of that length.
   */
  busyMs?: number;
}

export interface StandaloneResult {
  latencies: number[];
  /** onnxruntime's session.run alone, one per ortRuns. */
  ortMs: number[];
  answer: string;
}

async function main(job: StandaloneJob): Promise<StandaloneResult> {
  const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(job.modelDir, 'model-config.json'), 'utf8')), 'model-config.json');
  const spec: ModelSpec = {
    key: 'standalone', name: path.basename(job.modelDir), version: '1.0', modelPath: path.join(job.modelDir, 'model.onnx'), config,
    labels: config.postprocess.type === 'topk' ? config.postprocess.labels : undefined,
    handlerPath: config.handler ? path.join(job.modelDir, config.handler) : undefined,
  };
  const sessions = new SessionCache({ intraOpThreads: 1, interOpThreads: 1 });
  const model = await sessions.ensure(spec);
  const kernels = selectImageKernels('auto').kernels;
  const once = (body: Uint8Array = new Uint8Array(job.body), oip = job.oip) =>
    runInference(model, { body, contentType: job.contentType, requestId: 's', enqueuedAt: Date.now(), ...(oip ? { oip } : {}) }, { maxImagePixels: 1e8, kernels });
  const first = await once();
  const answer = first.body;
  for (let i = 0; i < 5; i++) await once();

  const serving = job.busyMs === undefined ? once : (): Promise<InferResult> => busy(job.busyMs!, first);
  if (job.serveGrpc) return serveGrpc(serving);
  if (job.serve) return serve(serving);

  const ortMs: number[] = [];
  if (job.ortRuns) {
    const input = model.inputs[0];
    const tensor = await preprocessImage(job.body, config.image!, input, { maxPixels: 1e8 }, undefined, kernels);
    const feeds = { [input.name]: new ort.Tensor('float32', tensor.data, tensor.dims) };
    for (let i = 0; i < 20; i++) await model.session.run(feeds);
    for (let i = 0; i < job.ortRuns; i++) {
      const t = performance.now();
      await model.session.run(feeds);
      ortMs.push(performance.now() - t);
    }
  }

  const latencies: number[] = [];
  const end = Date.now() + job.seconds * 1000;
  // One lane, `clients` closed loops: each client's next request waits for the lane like a queued request.
  let lane: Promise<unknown> = Promise.resolve();
  await Promise.all(
    Array.from({ length: job.clients }, async () => {
      while (Date.now() < end) {
        const t = performance.now();
        const turn = lane.then(() => once());
        lane = turn.catch(() => undefined);
        await turn;
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, ortMs, answer };
}

function busy(ms: number, result: InferResult): Promise<InferResult> {
  const until = performance.now() + ms;
  while (performance.now() < until); // the thread stays on its core, as a model's run keeps it
  return Promise.resolve(result);
}

/** The chunks in one buffer whose binary tensors start on an 8-byte boundary, as Quiver reads them (body.ts). */
function joined(chunks: Buffer[], headerLength: number): Uint8Array {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const start = (8 - (headerLength % 8)) % 8;
  const out = new Uint8Array(new ArrayBuffer(start + length), start, length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function serve(once: (body?: Uint8Array, oip?: OipFraming) => Promise<InferResult>): Promise<StandaloneResult> {
  return new Promise((resolve) => {
    let lane: Promise<unknown> = Promise.resolve();
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const header = req.headers['inference-header-content-length'];
        const headerLength = typeof header === 'string' ? Number(header) : undefined;
        const turn = lane.then(() => once(joined(chunks, headerLength ?? 0), headerLength === undefined ? undefined : { headerLength }));
        lane = turn.catch(() => undefined);
        turn.then(
          (answer) => {
            if (!answer.binary) return res.writeHead(200, { 'content-type': answer.contentType }).end(answer.body);
            const head = Buffer.from(answer.body);
            res.writeHead(200, { 'content-type': answer.contentType, 'inference-header-content-length': head.length });
            res.end(Buffer.concat([head, answer.binary]));
          },
          (err: Error) => res.writeHead(500).end(err.message),
        );
      });
    });
    server.keepAliveTimeout = 65_000;
    server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ port: (server.address() as AddressInfo).port }));
    parentPort!.on('message', (m) => {
      if (m === 'stop') server.close(() => resolve({ latencies: [], ortMs: [], answer: '' }));
      server.closeAllConnections();
    });
  });
}

function serveGrpc(once: (body?: Uint8Array, oip?: OipFraming) => Promise<InferResult>): Promise<StandaloneResult> {
  return new Promise((resolve, reject) => {
    let lane: Promise<unknown> = Promise.resolve();
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
    server.addService(serviceDefinitions().inference, {
      ModelInfer: (call: grpc.ServerUnaryCall<ModelInferRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const { body, headerLength } = inferRequestBody(call.request);
        const turn = lane.then(() => once(body, { headerLength }));
        lane = turn.catch(() => undefined);
        turn.then(
          (answer) => callback(null, inferResponse(answer.body, answer.binary)),
          (err: Error) => callback({ code: grpc.status.INTERNAL, details: err.message }),
        );
      },
    });
    // The HTTP/2 windows Quiver's listener opens (flow-control.ts): a 110 KB tensor waits on no WINDOW_UPDATE.
    widenStreamWindow(server);
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      widenConnectionWindows(server);
      parentPort!.postMessage({ port });
    });
    parentPort!.on('message', (m) => {
      if (m === 'stop') server.tryShutdown(() => resolve({ latencies: [], ortMs: [], answer: '' }));
    });
  });
}

main(workerData as StandaloneJob).then(
  (result) => parentPort!.postMessage({ ok: true, result }),
  (err: Error) => parentPort!.postMessage({ ok: false, error: err.stack ?? err.message }),
);
