import { CancelSignal, deadlineSignal, eitherSignal } from '../../src/workers/cancel-signal';

describe('CancelSignal', () => {
  test('runs each listener once, on the first abort, with its reason', () => {
    const signal = new CancelSignal();
    const heard: unknown[] = [];
    const listener = () => heard.push(signal.reason);
    signal.addEventListener('abort', listener);
    signal.addEventListener('abort', () => heard.push('second'));
    const reason = new Error('gone');
    signal.abort(reason);
    signal.abort(new Error('again'));
    expect(signal.aborted).toBe(true);
    expect(heard).toEqual([reason, 'second']);
    expect(signal.listenerCount).toBe(0);
  });

  test('a removed listener never runs; one added after the abort is not kept', () => {
    const signal = new CancelSignal();
    let calls = 0;
    const listener = () => calls++;
    signal.addEventListener('abort', listener);
    signal.removeEventListener('abort', listener);
    signal.abort();
    signal.addEventListener('abort', listener);
    expect(calls).toBe(0);
    expect(signal.listenerCount).toBe(0);
  });

  test('deadlineSignal aborts after its time, unless cleared', async () => {
    const fires = deadlineSignal(20);
    const cleared = deadlineSignal(20);
    cleared.clear();
    await new Promise((r) => setTimeout(r, 60));
    expect(fires.signal.aborted).toBe(true);
    expect(String(fires.signal.reason)).toMatch(/timed out after 20 ms/);
    expect(cleared.signal.aborted).toBe(false);
  });

  test('eitherSignal follows whichever source aborts first, AbortSignal or CancelSignal, and detaches', () => {
    const controller = new AbortController();
    const own = new CancelSignal();
    const both = eitherSignal(controller.signal, own);
    own.abort(new Error('client gone'));
    expect(both.signal.aborted).toBe(true);
    expect(String(both.signal.reason)).toMatch(/client gone/);

    const other = new CancelSignal();
    const pair = eitherSignal(other, new CancelSignal());
    pair.clear();
    expect(other.listenerCount).toBe(0);
    other.abort();
    expect(pair.signal.aborted).toBe(false);

    const already = new CancelSignal();
    already.abort(new Error('before'));
    expect(eitherSignal(already).signal.aborted).toBe(true);
  });
});
