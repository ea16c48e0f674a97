// Routes both API families share: GET /models/{name}[/all|/{version}] (describe) and GET /status (the memory budget).
import { Router } from 'express';
import type { ModelScheduler } from '../scheduler/scheduler';

export function modelStatusRouter(scheduler: ModelScheduler): Router {
  const router = Router();
  router.get('/status', async (req, res) => {
    // Asking every worker thread costs a turn on each: only on request.
    const sessions = req.query.sessions === 'true' ? { sessions: await scheduler.sessionCounts() } : {};
    res.json({ ...scheduler.status(), ...sessions });
  });
  // MMS: one object for the name (its default version); TorchServe: an array for /all and /{version}.
  router.get('/models/:name', (req, res) => {
    res.json(scheduler.describe(req.params.name));
  });
  router.get('/models/:name/all', (req, res) => {
    res.json(scheduler.describeVersions(req.params.name));
  });
  router.get('/models/:name/:version', (req, res) => {
    res.json([scheduler.describe(req.params.name, req.params.version)]);
  });
  return router;
}
