// Tasks reach a worker thread on a MessagePort of the slot's own, one message each way; piscina keeps the
// thread's life (start, replacement after an exit, termination) and carries only the port to each new
// thread. Its per-task path (task objects, async hooks, its own framing) cost 0.2 ms of CPU a task over a
// bare postMessage hop at 1 ms tasks (bench/RESULTS.md, "the pool path against a bare worker hop").
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { PortAnswer, PortTask, WorkerResult, WorkerTask } from './messages';

interface Pending {
  resolve(result: WorkerResult): void;
  reject(error: Error): void;
}

export class TaskPort {
  private port: MessagePort | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Whether a thread is up to take a port now: piscina gives a replacement its tasks only once it is ready. */
  private threadUp = false;
  /** A port opened while no thread was up: handed over when one starts. */
  private unsent: MessagePort | undefined;
  private closed = false;

  /** `connect` hands a port's far end to the current thread (a piscina task); it fails when that thread ends. */
  constructor(private readonly connect: (port: MessagePort) => Promise<unknown>) {}

  /** Runs a task on the thread; fails when the thread ends before it answers. */
  send(task: WorkerTask, transferList: ArrayBuffer[]): Promise<WorkerResult> {
    if (this.closed) return Promise.reject(new Error('the worker is closed'));
    const port = this.port ?? this.open();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      // An answer still to come keeps the process up, as a piscina task does.
      if (this.pending.size === 1) port.ref();
      try {
        // A buffer moved away already (detached, byteLength 0) in a transfer list makes postMessage drop the
        // message without a word (Node 20); cloned instead, it throws. An empty buffer costs nothing to clone.
        port.postMessage({ id, task } satisfies PortTask, transferList.filter((b) => b.byteLength > 0));
      } catch (err) {
        this.settle(id);
        reject(err as Error);
      }
    });
  }

  /** A thread is up (piscina's workerCreate): a port waiting for one is handed over. */
  threadStarted(): void {
    this.threadUp = true;
    const far = this.unsent;
    this.unsent = undefined;
    if (far) this.handOver(far);
  }

  close(): void {
    this.closed = true;
    if (this.port) this.ended(this.port, 'the worker is closed');
  }

  private open(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (answer: PortAnswer) => this.settle(answer.id)?.resolve(answer.result));
    // Either end closes when the thread that holds the far end exits, whatever ended it.
    port1.on('close', () => this.ended(port1, 'the worker thread ended'));
    port1.unref();
    this.port = port1;
    if (this.threadUp) this.handOver(port2);
    else this.unsent = port2;
    return port1;
  }

  private handOver(far: MessagePort): void {
    const near = this.port;
    this.connect(far).catch(() => {
      if (near) this.ended(near, 'the worker thread ended before it took its port');
    });
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.port?.unref();
    return pending;
  }

  /** The thread behind `port` ended: what it had fails, as piscina fails a thread's tasks, and the next task opens a new port. */
  private ended(port: MessagePort, why: string): void {
    if (this.port !== port) return;
    this.port = undefined;
    this.unsent = undefined;
    this.threadUp = false;
    port.close();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new Error(why));
  }
}
