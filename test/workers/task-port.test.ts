// Tasks cross to a worker thread on a port of the slot's own (task-port.ts): answers by id, a thread's end
// fails what it had, a new thread gets a new port, and a body that cannot be sent fails instead of
// vanishing. Real threads (worker_threads) stand in for piscina, which only hands the port over.
import { Worker, type MessagePort } from 'node:worker_threads';
import type { WorkerResult, WorkerTask } from '../../src/workers/messages';
import { TaskPort } from '../../src/workers/task-port';

// Answers every task with its own id (as a `sessions` count), after as many ms as a request body's first byte says.
const THREAD = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (port) => {
  port.on('message', ({ id, task }) => {
    const delayMs = task.request ? task.request.body[0] : 0;
    setTimeout(() => port.postMessage({ id, result: { ok: true, kind: 'sessions', count: id } }), delayMs);
  });
  parentPort.postMessage('connected');
});`;

class Thread {
  readonly worker = new Worker(THREAD, { eval: true });

  connect = (port: MessagePort): Promise<void> =>
    new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('exit', () => reject(new Error('exited')));
      this.worker.postMessage(port, [port]);
    });
}

const counts = (results: WorkerResult[]) => results.map((r) => (r.ok && r.kind === 'sessions' ? r.count : -1));
const sessions: WorkerTask = { kind: 'sessions' };
const infer = (body: Uint8Array): WorkerTask => ({ kind: 'infer', key: 'm', request: { body, contentType: 'application/octet-stream', requestId: 'r', enqueuedAt: 0 } });
let threads: Thread[] = [];

afterEach(async () => {
  await Promise.all(threads.map((t) => t.worker.terminate()));
  threads = [];
});

/** A TaskPort whose `connect` hands the port to the newest of `threads`. */
function taskPort(): TaskPort {
  return new TaskPort((port) => threads[threads.length - 1].connect(port));
}

test('each answer settles its own task, whatever the order they come back in', async () => {
  threads.push(new Thread());
  const tasks = taskPort();
  tasks.threadStarted();
  // The first is answered last.
  const bodies = [60, 0, 20].map((ms) => new Uint8Array([ms]));
  const results = await Promise.all(bodies.map((body) => tasks.send(infer(body), [body.buffer as ArrayBuffer])));
  expect(counts(results)).toEqual([0, 1, 2]);
  // Moved, not copied.
  expect(bodies.every((b) => b.byteLength === 0)).toBe(true);
});

test('a task sent before any thread is up waits for one', async () => {
  const tasks = taskPort();
  const early = tasks.send(sessions, []);
  threads.push(new Thread());
  tasks.threadStarted();
  expect(counts([await early])).toEqual([0]);
});

test("a thread's end fails what it had, and the next thread serves on a new port", async () => {
  threads.push(new Thread());
  const tasks = taskPort();
  tasks.threadStarted();
  const body = new Uint8Array([200]);
  const pending = tasks.send(infer(body), []);
  await new Promise((r) => setTimeout(r, 50));
  await threads[0].worker.terminate();
  await expect(pending).rejects.toThrow('the worker thread ended');
  // Until a thread is up again, a task waits; then it runs there.
  const next = tasks.send(sessions, []);
  threads.push(new Thread());
  tasks.threadStarted();
  expect(counts([await next])).toEqual([1]);
});

test('a body moved away already fails its task instead of vanishing', async () => {
  threads.push(new Thread());
  const tasks = taskPort();
  tasks.threadStarted();
  const body = new Uint8Array(64 * 1024);
  const moved = tasks.send(infer(body), [body.buffer as ArrayBuffer]);
  const again = tasks.send(infer(body), [body.buffer as ArrayBuffer]);
  await expect(again).rejects.toThrow(/detached/);
  expect(counts([await moved])).toEqual([0]);
});

test('after close, tasks fail at once', async () => {
  threads.push(new Thread());
  const tasks = taskPort();
  tasks.threadStarted();
  expect(counts([await tasks.send(sessions, [])])).toEqual([0]);
  tasks.close();
  await expect(tasks.send(sessions, [])).rejects.toThrow('closed');
});
