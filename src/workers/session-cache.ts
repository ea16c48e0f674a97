// The onnxruntime sessions one worker thread holds, by model key. A task for a model this worker
// lost (it was replaced after a crash) loads it again instead of failing.
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { InvalidModelArchiveError, WorkerFailedError } from '../errors';
import type { TensorInfo } from '../preprocess/tensor-types';
import { ModelHandler, asModelHandler } from './handler-api';
import type { ModelSpec } from './messages';
import { inNative } from './native-gate';

export interface LoadedModel {
  spec: ModelSpec;
  session: ort.InferenceSession;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  handler?: ModelHandler;
  /** Reused input buffer for image models: a worker runs one task at a time. */
  scratch?: Float32Array;
  /** Set once the session has run: its first run's memory has been measured. */
  ranOnce?: boolean;
  /** Where the session runs; `cuda` on this thread's GPU. */
  device: 'cpu' | 'cuda';
  /** Why a session asked onto the GPU runs on the CPU. */
  deviceFallback?: string;
  /** A fake GPU's session: the device bytes it is counted as holding. */
  fakeGpuBytes?: number;
}

export interface SessionSettings {
  intraOpThreads: number;
  interOpThreads: number;
  /** This thread's GPU; CUDA sessions go on it. */
  gpu?: number;
  /** QUIVER_FAKE_GPUS: a CUDA session runs on the CPU, and its file size counts as device memory. */
  fakeGpu?: boolean;
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => ({
    name: m.name,
    type: m.isTensor ? m.type : 'non-tensor',
    shape: m.isTensor ? [...m.shape] : [],
  }));
}

/** y = x, one float: created once per thread so onnxruntime's one-time set-up is not billed to a model. */
const WARM_UP_MODEL = Buffer.from('CAc6NwoQCgF4EgF5IghJZGVudGl0eRIBd1oPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEA0=', 'base64');

/**
 * Drops a handler's module from require's cache and from this module's children: Node keeps every
 * module it ever required in its parent's `children`, so each reload kept the old copy (RSS grew with
 * every register/unregister cycle). The handler's closures live on in its session's LoadedModel.
 */
function forgetModule(file: string): void {
  delete require.cache[file];
  const at = module.children.findIndex((m) => m.filename === file);
  if (at >= 0) module.children.splice(at, 1);
}

export class SessionCache {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly pending = new Map<string, Promise<LoadedModel>>();
  private warm: Promise<void> | undefined;

  constructor(private readonly settings: SessionSettings) {}

  /** Sets onnxruntime up on this thread (environment, allocators), so later loads measure only themselves. */
  warmUp(): Promise<void> {
    this.warm ??= inNative(async () => {
      const session = await ort.InferenceSession.create(WARM_UP_MODEL, {
        executionProviders: ['cpu'], intraOpNumThreads: this.settings.intraOpThreads, interOpNumThreads: this.settings.interOpThreads,
      });
      await session.run({ x: new ort.Tensor('float32', new Float32Array(1), [1]) });
      await session.release();
    });
    return this.warm;
  }

  has(key: string): boolean {
    return this.loaded.has(key);
  }

  async ensure(spec: ModelSpec): Promise<LoadedModel> {
    const ready = this.loaded.get(spec.key);
    if (ready) return ready;
    let loading = this.pending.get(spec.key);
    if (!loading) {
      loading = this.create(spec).finally(() => this.pending.delete(spec.key));
      this.pending.set(spec.key, loading);
    }
    return loading;
  }

  /** The session a request names by key; its spec comes along only when this thread may not have it. */
  forTask(key: string, spec: ModelSpec | undefined): Promise<LoadedModel> {
    if (spec) return this.ensure(spec);
    const ready = this.loaded.get(key) ?? this.pending.get(key);
    if (!ready) return Promise.reject(new WorkerFailedError(`model session ${key} is not loaded on this thread`));
    return Promise.resolve(ready);
  }

  private async create(spec: ModelSpec): Promise<LoadedModel> {
    let handler: ModelHandler | undefined;
    if (spec.handlerPath) {
      try {
        // Handlers are code the operator installed with the model, as in MMS.
        // A re-registered model must see its handler file as it is now.
        delete require.cache[spec.handlerPath];
        handler = asModelHandler(require(spec.handlerPath), spec.handlerPath);
        forgetModule(spec.handlerPath);
      } catch (err) {
        throw new InvalidModelArchiveError(`handler of model "${spec.name}" could not be loaded: ${(err as Error).message}`);
      }
    }
    let created: Pick<LoadedModel, 'session' | 'device' | 'deviceFallback' | 'fakeGpuBytes'>;
    try {
      created = await this.createSession(spec);
    } catch (err) {
      throw new InvalidModelArchiveError(`model "${spec.name}" could not be loaded by onnxruntime: ${(err as Error).message}`);
    }
    const { session } = created;
    const model: LoadedModel = {
      spec, handler, ...created, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata),
    };
    this.loaded.set(spec.key, model);
    return model;
  }

  /** A CUDA session on this thread's GPU when the spec asks for one and the provider works, else a CPU one. */
  private async createSession(spec: ModelSpec): Promise<Pick<LoadedModel, 'session' | 'device' | 'deviceFallback' | 'fakeGpuBytes'>> {
    const options: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: this.settings.intraOpThreads,
      interOpNumThreads: this.settings.interOpThreads,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // The memory pattern plans one block per input shape and keeps it: the PP-OCR detector held
      // 304 MiB with it and 206 without, at the same speed (1280×960 page, measured).
      enableMemPattern: false,
    };
    const onCpu = () => inNative(() => ort.InferenceSession.create(spec.modelPath, { ...options, executionProviders: ['cpu'] }));
    if (spec.device !== 'cuda') return { session: await onCpu(), device: 'cpu' };
    const gpu = this.settings.gpu;
    if (gpu === undefined) return { session: await onCpu(), device: 'cpu', deviceFallback: 'its worker thread has no GPU' };
    if (this.settings.fakeGpu) {
      const session = await onCpu();
      return { session, device: 'cuda', fakeGpuBytes: fs.statSync(spec.modelPath).size };
    }
    try {
      // Nodes the CUDA provider cannot run stay on the CPU, as onnxruntime places them.
      return { session: await inNative(() => ort.InferenceSession.create(spec.modelPath, { ...options, executionProviders: [{ name: 'cuda', deviceId: gpu }, 'cpu'] })), device: 'cuda' };
    } catch (err) {
      const reason = `onnxruntime's CUDA provider failed on GPU ${gpu}: ${(err as Error).message.split('\n')[0]}`;
      return { session: await onCpu(), device: 'cpu', deviceFallback: reason };
    }
  }

  /** Device bytes the fake GPU's sessions are counted as holding (QUIVER_FAKE_GPUS). */
  fakeGpuBytes(): number {
    let bytes = 0;
    for (const m of this.loaded.values()) bytes += m.fakeGpuBytes ?? 0;
    return bytes;
  }

  /** Sessions loaded or loading on this thread. */
  get size(): number {
    return new Set([...this.loaded.keys(), ...this.pending.keys()]).size;
  }

  async release(key: string): Promise<boolean> {
    await this.pending.get(key)?.catch(() => undefined);
    const model = this.loaded.get(key);
    if (!model) return false;
    this.loaded.delete(key);
    await inNative(() => model.session.release());
    return true;
  }
}
