// mmesh.ModelRuntime's answers from a stand-in scheduler, without threads or sockets: what ModelMesh is
// told when a purge fails, and that no snapshot is written under it (server.ts).
import type * as grpc from '@grpc/grpc-js';
import { modelMeshService } from '../../src/grpc/modelmesh-service';
import type { ModelScheduler } from '../../src/scheduler/scheduler';

function ask(service: grpc.UntypedServiceImplementation, method: string, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const call = { request, metadata: { get: () => [] } };
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
