// A signal that aborts when the client closes its connection before its answer was written, so that a
// request still queued (for a load, a batch or a worker) is dropped rather than run for nobody.
import type { Response } from 'express';

export function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
