// A signal that aborts when the client closes its connection before its answer was written, so that a
// request still queued (for a load, a batch or a worker) is dropped rather than run for nobody.
import type { ServerResponse } from 'node:http';
import { CancelSignal } from '../workers/cancel-signal';

export function clientGone(res: ServerResponse): CancelSignal {
  const signal = new CancelSignal();
  res.once('close', () => {
    if (!res.writableFinished) signal.abort(new Error('the client went away'));
  });
  return signal;
}
