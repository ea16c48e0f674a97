// GET /metrics in the Prometheus text format.
import { Router } from 'express';
import type { QuiverMetrics } from '../metrics';

export function metricsRouter(metrics: QuiverMetrics): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
