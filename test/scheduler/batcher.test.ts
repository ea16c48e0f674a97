// The batcher with a fake pair of hosts: when batches leave, where they go, and who gets which answer.
import { InferenceTimeoutError } from '../../src/errors';
import { ModelBatcher } from '../../src/scheduler/batcher';
import type { InferBatchResult, InferRequest, InferResult } from '../../src/workers/messages';

/**
 * A request the test does not wait for: its rejection (at its response_timeout, long after the test) is
 * expected, and must not surface later as an unhandled rejection in whatever suite then shares the worker.
 */
function quiet(answer: Promise<unknown>): void {
  answer.catch(() => undefined);
}

interface Sent {
  host: number;
  ids: string[];
  at: number;
  finish(): void;
}

function fakeHosts(hosts: number[]) {
  const sent: Sent[] = [];
  const host = {
    hosts: () => hosts,
    dispatch: (h: number, requests: InferRequest[]) =>
      new Promise<InferBatchResult>((resolve) => {
        const answer = (r: InferRequest): InferResult => ({
          ok: true, kind: 'infer', contentType: 'text/plain', body: `answer to ${r.requestId}`, preprocessPath: 'tensor-json', batchSize: requests.length,
          timings: { queueMs: 0, preprocessMs: 0, inferenceMs: 0, postprocessMs: 0 },
        });
        sent.push({ host: h, ids: requests.map((r) => r.requestId), at: performance.now(), finish: () => resolve({ ok: true, kind: 'inferBatch', results: requests.map(answer), runs: [requests.length] }) });
      }),
    observeBatch: () => undefined,
  };
  return { host, sent };
}

const request = (id: string): InferRequest => ({ body: new Uint8Array(1), contentType: 'application/json', requestId: id, enqueuedAt: Date.now() });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ModelBatcher', () => {
  test('requests spread over the idle hosts, each host takes its share, and each caller gets its own answer', async () => {
    const { host, sent } = fakeHosts([0, 1]);
    const batcher = new ModelBatcher('m', 32, 10_000, host);
    const answers = Array.from({ length: 10 }, (_, i) => batcher.submit(request(`r${i}`), 60_000));
    await tick();
    // Each arrival finds an idle host until both are busy; the other eight queue.
    expect(sent.map((s) => [s.host, s.ids])).toEqual([[0, ['r0']], [1, ['r1']]]);
    sent[0].finish();
    await tick();
    // 8 queued and 1 running: host 0 takes its share, 5 (9 over 2, rounded up).
    expect(sent[2]).toMatchObject({ host: 0, ids: ['r2', 'r3', 'r4', 'r5', 'r6'] });
    sent[1].finish();
    await tick();
    // 3 queued and 5 running: short of host 1's share of 4, so they wait for more, or for host 0.
    expect(sent).toHaveLength(3);
    sent[2].finish();
    await tick();
    // Nothing running: the three spread over both hosts at once.
    expect(sent.slice(3).map((s) => [s.host, s.ids])).toEqual([[0, ['r7', 'r8']], [1, ['r9']]]);
    sent.slice(3).forEach((s) => s.finish());
    const bodies = (await Promise.all(answers)).map((a) => a.body);
    expect(bodies).toEqual(Array.from({ length: 10 }, (_, i) => `answer to r${i}`));
  });

  test('an idle host takes its share as soon as it is queued, not after max_batch_delay', async () => {
    const { host, sent } = fakeHosts([0, 1]);
    const batcher = new ModelBatcher('m', 32, 10_000, host);
    for (let i = 0; i < 8; i++) quiet(batcher.submit(request(`a${i}`), 60_000));
    await tick();
    sent[0].finish();
    await tick();
    sent[1].finish();
    await tick();
    // Host 0 runs 4 (a2..a5); host 1 is idle with a6, a7 queued: 6 in sight make a share of 3.
    expect(sent.map((s) => s.ids.length)).toEqual([1, 1, 4]);
    quiet(batcher.submit(request('b0'), 60_000));
    await tick();
    expect(sent[3]).toMatchObject({ host: 1, ids: ['a6', 'a7', 'b0'] });
  });

  test('a batch short of its share still goes once its oldest request has waited max_batch_delay', async () => {
    const { host, sent } = fakeHosts([0, 1]);
    // Long enough that a slow machine gets through the set-up below well within it.
    const batcher = new ModelBatcher('m', 32, 400, host);
    const queuedAt = performance.now();
    for (let i = 0; i < 10; i++) quiet(batcher.submit(request(`r${i}`), 60_000));
    await tick();
    sent[0].finish();
    await tick();
    sent[1].finish();
    await tick();
    // As above: r7..r9 wait on host 1 for a share of 4 while host 0 runs 5; max_batch_delay ends the wait.
    expect(sent).toHaveLength(3);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(sent[3]).toMatchObject({ host: 1, ids: ['r7', 'r8', 'r9'] });
    expect(sent[3].at - queuedAt).toBeGreaterThanOrEqual(395);
  });

  test('a request whose response_timeout is shorter than max_batch_delay is answered at its timeout, not at the delay', async () => {
    const { host, sent } = fakeHosts([0, 1, 2]);
    const batcher = new ModelBatcher('m', 32, 5_000, host);
    for (let i = 0; i < 15; i++) quiet(batcher.submit(request(`r${i}`), 60_000));
    await tick();
    for (const k of [0, 1, 2]) {
      sent[k].finish();
      await tick();
    }
    // Hosts 0 and 1 run 5 each; host 2 is idle and waits for its share (4 of 12 in sight) with 2 queued.
    expect(sent.map((s) => s.ids.length)).toEqual([1, 1, 1, 5, 5]);
    const started = performance.now();
    const short = batcher.submit(request('short'), 50);
    await tick();
    expect(sent).toHaveLength(5);
    await expect(short).rejects.toBeInstanceOf(InferenceTimeoutError);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  test('a request that waits past its response_timeout gets InferenceTimeoutError while the hosts stay busy', async () => {
    const { host, sent } = fakeHosts([0]);
    const batcher = new ModelBatcher('m', 4, 5, host);
    quiet(batcher.submit(request('running'), 60_000));
    await tick();
    const waiting = batcher.submit(request('too-late'), 30);
    await expect(waiting).rejects.toBeInstanceOf(InferenceTimeoutError);
    expect(sent.flatMap((s) => s.ids)).toEqual(['running']);
  });
});
