// mmesh.ModelRuntime: how KServe ModelMesh loads, sizes and unloads models on this server. Sizes are
// what Quiver measured (resident memory of the loaded copies), not a guess from the file size.
import type { ModelScheduler } from '../scheduler/scheduler';
import { QuiverError } from '../errors';
import { SERVER_VERSION } from '../version';
import { unary } from './calls';
import type * as grpc from '@grpc/grpc-js';

export interface ModelMeshOptions {
  capacityBytes: number;
  modelLoadTimeoutMs: number;
  /** What ModelMesh assumes a model costs before it has a size for it. */
  defaultModelSizeBytes: number;
}

const INFERENCE = 'inference.GRPCInferenceService';

interface LoadModelRequest {
  modelId: string;
  modelType: string;
  modelPath: string;
  modelKey: string;
}

export function modelMeshService(scheduler: ModelScheduler, options: ModelMeshOptions): grpc.UntypedServiceImplementation {
  // ModelMesh starts from an empty runtime: models held from before (a restart) are dropped first.
  let purged: Promise<void> | undefined;
  const purge = () =>
    (purged ??= Promise.all(scheduler.registry.all().map((r) => scheduler.unregister(r.name).catch(() => undefined))).then(() => undefined));
  const concurrency = (name: string) => {
    const d = scheduler.describe(name);
    return Math.max(1, d.minWorkers) * Math.max(1, d.batchSize);
  };

  return {
    runtimeStatus: unary(async () => {
      await purge();
      return {
        status: 'READY',
        capacityInBytes: options.capacityBytes,
        // Loads are serialized so each one's memory can be measured.
        maxLoadingConcurrency: 1,
        modelLoadingTimeoutMs: options.modelLoadTimeoutMs,
        defaultModelSizeInBytes: options.defaultModelSizeBytes,
        runtimeVersion: SERVER_VERSION,
        methodInfos: {
          [`${INFERENCE}/ModelInfer`]: { idInjectionPath: [1] },
          [`${INFERENCE}/ModelMetadata`]: { idInjectionPath: [1] },
        },
        allowAnyMethod: false,
        limitModelConcurrency: false,
      };
    }),
    loadModel: unary(async (req: LoadModelRequest) => {
      try {
        await scheduler.register({ name: req.modelId, url: req.modelPath, synchronous: true });
      } catch (err) {
        // ModelMesh may retry a load it lost track of: the model it asked for is there.
        if (!(err instanceof QuiverError && err.kind === 'ModelAlreadyExists')) throw err;
        await scheduler.signature(req.modelId);
      }
      return { sizeInBytes: scheduler.describe(req.modelId).memoryBytes, maxConcurrency: concurrency(req.modelId) };
    }),
    unloadModel: unary(async (req: { modelId: string }) => {
      if (scheduler.registry.has(req.modelId)) await scheduler.unregister(req.modelId);
      return {};
    }),
    predictModelSize: unary(async (req: LoadModelRequest) => ({ sizeInBytes: await scheduler.predictBytes(req.modelPath) })),
    modelSize: unary(async (req: { modelId: string }) => ({ sizeInBytes: scheduler.describe(req.modelId).memoryBytes })),
  };
}
