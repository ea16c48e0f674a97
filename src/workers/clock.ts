// Epoch milliseconds with sub-millisecond resolution, comparable across threads: a request's time in
// the queue is its worker's start less the main thread's hand-over, often under 1 ms, which Date.now()
// rounds to whole milliseconds (a 0.2 ms wait read as 1 ms made the stages outlast the request).
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
