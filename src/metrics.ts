// Prometheus metrics (prom-client), one registry per server. Names follow Prometheus conventions:
// quiver_*_total counters, *_seconds and *_bytes units.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricSources {
  /** Requests queued or running, by model. */
  queueDepth(): Map<string, number>;
  /** Bytes the loaded models take (measured), and device memory the workers hold. */
  memoryInUse(): { host: number; gpu: number };
  modelsLoaded(): number;
}

export type Stage = 'queue' | 'preprocess' | 'inference' | 'postprocess';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class QuiverMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'quiver_requests_total', help: 'HTTP requests answered, by API family, model and status code.',
    labelNames: ['api', 'model', 'status'] as const, registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'quiver_request_duration_seconds', help: 'Time from request to answer, by API family and model.',
    labelNames: ['api', 'model'] as const, buckets: LATENCY_BUCKETS, registers: [this.registry],
  });

  readonly stageDuration = new Histogram({
    name: 'quiver_inference_stage_duration_seconds', help: 'Time an inference spends in each stage: queue, preprocess, inference, postprocess.',
    labelNames: ['model', 'stage'] as const, buckets: LATENCY_BUCKETS, registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'quiver_batch_size', help: 'Requests per onnxruntime run.',
    labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64], registers: [this.registry],
  });

  readonly modelLoads = new Counter({
    name: 'quiver_model_loads_total', help: 'Model loads onto a worker, by outcome.',
    labelNames: ['model', 'outcome'] as const, registers: [this.registry],
  });

  readonly modelLoadDuration = new Histogram({
    name: 'quiver_model_load_duration_seconds', help: 'Time to create a model session on a worker.',
    labelNames: ['model'] as const, buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry],
  });

  readonly evictions = new Counter({
    name: 'quiver_model_evictions_total', help: 'Models unloaded to make room under the memory budget.',
    labelNames: ['model'] as const, registers: [this.registry],
  });

  readonly workerRestarts = new Counter({
    name: 'quiver_worker_restarts_total', help: 'Worker threads replaced after they exited or failed.',
    labelNames: ['worker'] as const, registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'quiver_queue_depth', help: 'Requests queued or running, by model.', labelNames: ['model'] as const, registers,
      collect() {
        this.reset();
        for (const [model, depth] of sources.queueDepth()) this.set({ model }, depth);
      },
    });
    new Gauge({
      name: 'quiver_memory_in_use_bytes', help: 'Memory the loaded models take (host: measured per model and worker; gpu: preprocessing buffers).',
      labelNames: ['device'] as const, registers,
      collect() {
        const memory = sources.memoryInUse();
        this.set({ device: 'host' }, memory.host);
        this.set({ device: 'gpu' }, memory.gpu);
      },
    });
    new Gauge({
      name: 'quiver_models_loaded', help: 'Models registered and placed on workers.', registers,
      collect() {
        this.set(sources.modelsLoaded());
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }
}
