// The standalone baselines' threads (standalone-worker.ts): one model's pipeline alone, timed in its
// thread or served over node:http as a one-model server would.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { StandaloneJob, StandaloneResult } from './standalone-worker';

export function standalone(job: StandaloneJob): Promise<StandaloneResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'standalone-worker.js'), { workerData: job });
    worker.once('message', (m: { ok: boolean; result?: StandaloneResult; error?: string }) => {
      void worker.terminate();
      if (m.ok) resolve(m.result!);
      else reject(new Error(m.error));
    });
    worker.once('error', reject);
  });
}

/** A standalone one-model HTTP (or, with `serveGrpc`, gRPC) server in its own thread; `stop` ends it. */
export function standaloneServer(job: StandaloneJob): Promise<{ url: string; address: string; stop(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'standalone-worker.js'), { workerData: job.serveGrpc ? job : { ...job, serve: true } });
    worker.once('error', reject);
    worker.on('message', (m: { port?: number; ok?: boolean; error?: string }) => {
      if (m.port) {
        resolve({
          url: `http://127.0.0.1:${m.port}`,
          address: `127.0.0.1:${m.port}`,
          stop: () => new Promise((done) => {
            worker.once('message', () => void worker.terminate().then(() => done()));
            worker.postMessage('stop');
          }),
        });
      } else if (m.ok === false) reject(new Error(m.error));
    });
  });
}
