// mmesh.ModelRuntime's answers from a stand-in scheduler, without threads or sockets: what ModelMesh is
// told when a purge fails, and that no snapshot is written under it (server.ts).
import type * as grpc from '@grpc/grpc-js';
import { ModelAlreadyExistsError } from '../../src/errors';
import { modelMeshService } from '../../src/grpc/modelmesh-service';
import type { ModelScheduler } from '../../src/scheduler/scheduler';

function ask(service: grpc.UntypedServiceImplementation, method: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const call = { request, metadata: { get: () => [] }, cancelled: false, getDeadline: () => Infinity };
    (service[method] as (c: unknown, cb: (e: unknown, v: unknown) => void) => void)(call, (err, value) => (err ? reject(err) : resolve(value)));
  });
}

test('a purge that fails answers STARTING (model-mesh polls again only then; FAILING stops it at start), and READY once one succeeds', async () => {
  let failing = true;
  const names = new Set(['early']);
  const scheduler = {
    modelNames: () => [...names],
    unregisterAll: async (name: string) => {
      if (failing) throw new Error('the disk is full');
      names.delete(name);
    },
  } as unknown as ModelScheduler;
  const service = modelMeshService(scheduler, {
    capacityBytes: 2 ** 30, modelLoadTimeoutMs: 120_000, reportedLoadTimeoutMs: 240_000, defaultModelSizeBytes: 64 * 2 ** 20, isStarted: () => true,
  });
  expect(await ask(service, 'runtimeStatus', {})).toEqual({ status: 'STARTING' });
  expect(names.has('early')).toBe(true);
  failing = false;
  expect(await ask(service, 'runtimeStatus', {})).toMatchObject({ status: 'READY', modelLoadingTimeoutMs: 240_000, capacityInBytes: 2 ** 30 });
  expect(names.size).toBe(0);
});

test('a load that meets a model of the same name registered meanwhile by another API replaces it, once', async () => {
  const calls: string[] = [];
  let registered = false;
  let conflicts = 1;
  const scheduler = {
    modelNames: () => [],
    registration: () => undefined,
    threadOverheadBytes: () => 0,
    hasModel: () => registered,
    register: async () => {
      calls.push('register');
      if (conflicts-- > 0) throw new ModelAlreadyExistsError('model "m" version 1.0 is already registered');
      registered = true;
    },
    unregisterAll: async () => {
      calls.push('unregister');
      registered = false;
    },
    signature: async () => ({}),
    warmUp: async () => true,
    describe: () => ({ memoryBytes: 5 * 2 ** 20, minWorkers: 1, batchSize: 1 }),
  } as unknown as ModelScheduler;
  const service = modelMeshService(scheduler, {
    capacityBytes: 2 ** 30, modelLoadTimeoutMs: 120_000, reportedLoadTimeoutMs: 240_000, defaultModelSizeBytes: 64 * 2 ** 20, isStarted: () => true,
  });
  expect(await ask(service, 'loadModel', { modelId: 'm', modelPath: '/models/m/model.onnx' })).toEqual({ sizeInBytes: 5 * 2 ** 20, maxConcurrency: 1 });
  expect(calls).toEqual(['register', 'unregister', 'register']);
  // A second conflict is not retried again: the load fails with it.
  conflicts = 2;
  registered = false;
  calls.length = 0;
  await expect(ask(service, 'loadModel', { modelId: 'n', modelPath: '/models/n/model.onnx' })).rejects.toMatchObject({ code: 6 });
  expect(calls).toEqual(['register', 'unregister', 'register']);
});
