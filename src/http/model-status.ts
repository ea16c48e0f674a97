// Routes both API families share: GET /models/{name} (describe) and GET /status (the memory budget).
import { Router } from 'express';
import type { ModelScheduler } from '../scheduler/scheduler';

export function modelStatusRouter(scheduler: ModelScheduler): Router {
  const router = Router();
  router.get('/status', (_req, res) => {
    res.json(scheduler.status());
  });
  router.get('/models/:name', (req, res) => {
    res.json(scheduler.describe(req.params.name));
  });
  return router;
}
