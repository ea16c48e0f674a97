// The gRPC listeners: the inference service (with gRPC health) on grpc_inference_address, and the
// ModelMesh runtime service on modelmesh_address (the same server when the addresses are the same).
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { InvalidConfigError } from '../errors';
import type { ModelScheduler } from '../scheduler/scheduler';
import { widenConnectionWindows, widenStreamWindow } from './flow-control';
import { healthService } from './health-service';
import { GrpcKeys, inferenceService } from './inference-service';
import { ModelMeshOptions, modelMeshService } from './modelmesh-service';
import type { SystemSharedMemory } from '../oip/shared-memory';
import type { InflightBytes } from '../http/inflight';
import { serviceDefinitions } from './protos';

export interface GrpcOptions {
  inferenceAddress: string;
  modelMeshAddress: string;
  maxMessageBytes: number;
  isHealthy: () => boolean;
  /** False while the server warms up: these listeners are bound before (ModelMesh's puller connects at once). */
  isStarted: () => boolean;
  modelMesh: Omit<ModelMeshOptions, 'isStarted'>;
  /** Keys the inference listener checks (token_auth); the ModelMesh listener checks none. */
  keys?: GrpcKeys;
  /** Client shared memory (allow_client_shm), on the inference listener only. */
  shm?: SystemSharedMemory;
  /** max_inflight_bytes, shared with the HTTP ports. */
  inflight?: InflightBytes;
}

export interface GrpcListener {
  address: string;
  /** The bound port (0 for a unix socket). */
  port: number;
  services: string[];
}

/** Whether something accepts connections on the unix socket at `file`. */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(file);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * A socket file left by a server that died (a supervised restart in the same pod, ModelMesh's socket)
 * would make the bind fail: it is removed when nothing answers on it. A live one is left to fail the bind.
 */
async function removeStaleSocket(address: string): Promise<void> {
  if (!address.startsWith('unix:')) return;
  const file = address.slice('unix:'.length);
  const stat = await fsp.lstat(file).catch(() => undefined);
  if (!stat?.isSocket() || (await socketAnswers(file))) return;
  await fsp.unlink(file).catch(() => undefined);
}

async function bind(server: grpc.Server, address: string): Promise<number> {
  await removeStaleSocket(address);
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new InvalidConfigError(`gRPC could not listen on ${address}: ${err.message}`));
      else resolve(port);
    });
  });
}

export class GrpcServers {
  private constructor(private readonly servers: grpc.Server[], readonly listeners: GrpcListener[]) {}

  static async start(scheduler: ModelScheduler, options: GrpcOptions): Promise<GrpcServers> {
    const defs = serviceDefinitions();
    const wanted = new Map<string, string[]>();
    if (options.inferenceAddress !== 'off') wanted.set(options.inferenceAddress, ['inference.GRPCInferenceService']);
    // ModelMesh sends inference to its management address when it was given no serving port: serve both there.
    if (options.modelMeshAddress !== 'off') wanted.set(options.modelMeshAddress, ['inference.GRPCInferenceService', 'mmesh.ModelRuntime']);
    const servers: grpc.Server[] = [];
    const listeners: GrpcListener[] = [];
    try {
      for (const [address, services] of wanted) {
        const server = new grpc.Server({
          'grpc.max_receive_message_length': options.maxMessageBytes,
          'grpc.max_send_message_length': options.maxMessageBytes,
        });
        if (services.includes('inference.GRPCInferenceService')) {
          // ModelMesh calls its runtime's inference service without a token, and never its repository
          // RPCs (models come and go through mmesh.ModelRuntime): those are not served there.
          const meshListener = services.includes('mmesh.ModelRuntime');
          server.addService(defs.inference, inferenceService(scheduler, {
            isHealthy: options.isHealthy, isStarted: options.isStarted, keys: meshListener ? undefined : options.keys, repository: !meshListener,
            shm: meshListener ? undefined : options.shm, maxMessageBytes: options.maxMessageBytes, inflight: options.inflight,
          }));
        }
        if (services.includes('mmesh.ModelRuntime')) server.addService(defs.modelRuntime, modelMeshService(scheduler, { ...options.modelMesh, isStarted: options.isStarted }));
        server.addService(defs.health, healthService(services, options.isHealthy));
        servers.push(server);
        widenStreamWindow(server);
        const port = await bind(server, address);
        widenConnectionWindows(server);
        listeners.push({ address, port, services });
      }
    } catch (err) {
      for (const s of servers) s.forceShutdown();
      throw err;
    }
    return new GrpcServers(servers, listeners);
  }

  /** Calls in flight may finish for `graceMs`; then whatever is left (health watches) is cut. */
  async close(graceMs = 5_000): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }
}
