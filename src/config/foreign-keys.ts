// Keys of MMS's and TorchServe's config.properties that Quiver knows but does not use, with why, so
// that a migrated file stops the start with a line that says what to do rather than "unknown key".
// Keys that mean the same thing in Quiver are in the schema itself, under the same names.

type Origin = 'MMS' | 'TorchServe' | 'MMS and TorchServe';

interface ForeignKey {
  from: Origin;
  why: string;
}

const BOTH: Origin = 'MMS and TorchServe';
const NETTY = 'Quiver serves HTTP from Node\'s event loop, not Netty threads';
const PYTHON = 'Quiver runs ONNX models with JavaScript handlers, not Python workers';
const JVM = 'Quiver is a Node.js process, not a JVM';

const PROMETHEUS = 'metrics are always Prometheus, at /metrics on the management address';
const CORS = 'Quiver sends no CORS headers; put a proxy in front of it for browsers';
const NO_GRPC = 'Quiver has no gRPC API yet';

const FOREIGN_KEYS: Record<string, ForeignKey> = {
  number_of_netty_threads: { from: BOTH, why: NETTY },
  netty_client_threads: { from: BOTH, why: NETTY },
  use_native_io: { from: BOTH, why: NETTY },
  io_ratio: { from: BOTH, why: NETTY },
  prefer_direct_buffer: { from: 'TorchServe', why: NETTY },
  default_service_handler: { from: BOTH, why: `${PYTHON}; a model's handler is named in its model-config.json or MANIFEST.json` },
  service_envelope: { from: 'TorchServe', why: PYTHON },
  install_py_dep_per_model: { from: 'TorchServe', why: PYTHON },
  blacklist_env_vars: { from: BOTH, why: PYTHON },
  decode_input_request: { from: BOTH, why: 'bodies are decoded by their content type (JSON tensors, images, or raw bytes to a handler)' },
  vmargs: { from: BOTH, why: JVM },
  model_server_home: { from: BOTH, why: JVM },
  debug: { from: BOTH, why: 'use log_level=debug' },
  async_logging: { from: BOTH, why: 'logs are written by pino; set log_level and log_format' },
  metric_time_interval: { from: BOTH, why: 'metrics are Prometheus gauges and counters, read when /metrics is scraped' },
  metrics_address: { from: 'TorchServe', why: 'Prometheus metrics are at /metrics on the management address (SageMaker mode: the one port)' },
  metrics_mode: { from: 'TorchServe', why: PROMETHEUS },
  metrics_format: { from: 'TorchServe', why: PROMETHEUS },
  metrics_config: { from: 'TorchServe', why: PROMETHEUS },
  enable_metrics_api: { from: 'TorchServe', why: 'metrics are always at /metrics on the management address' },
  disable_system_metrics: { from: 'TorchServe', why: 'system metrics are the process metrics at /metrics' },
  system_metrics_cmd: { from: 'TorchServe', why: 'system metrics are the process metrics at /metrics' },
  model_metrics_auto_detect: { from: 'TorchServe', why: 'per-model metrics are always on' },
  cors_allowed_origin: { from: BOTH, why: CORS },
  cors_allowed_methods: { from: BOTH, why: CORS },
  cors_allowed_headers: { from: BOTH, why: CORS },
  max_response_size: { from: BOTH, why: 'answers are not limited in size' },
  number_of_gpu: { from: BOTH, why: 'Quiver runs its models on the CPU' },
  enable_envvars_config: { from: BOTH, why: 'QUIVER_* environment variables are always read' },
  use_env_allowed_urls: { from: 'TorchServe', why: 'QUIVER_ALLOWED_URLS is always read' },
  model_snapshot: { from: 'TorchServe', why: 'the registry snapshot is always kept in work_dir' },
  snapshot_store: { from: 'TorchServe', why: 'the registry snapshot is always kept in work_dir' },
  unregister_model_timeout: { from: 'TorchServe', why: 'an unregister waits for the requests in flight, up to their response_timeout' },
  default_startup_timeout: { from: 'TorchServe', why: 'a model loads in one worker thread; there is no worker start-up to time' },
  initial_worker_port: { from: 'TorchServe', why: 'workers are threads of the server process, with no ports' },
  initial_distribution_port: { from: 'TorchServe', why: 'workers are threads of the server process, with no ports' },
  grpc_inference_port: { from: 'TorchServe', why: NO_GRPC },
  grpc_management_port: { from: 'TorchServe', why: NO_GRPC },
  grpc_inference_address: { from: 'TorchServe', why: NO_GRPC },
  grpc_management_address: { from: 'TorchServe', why: NO_GRPC },
  enable_grpc_ssl: { from: 'TorchServe', why: NO_GRPC },
  grpc_inference_max_connection_age_ms: { from: 'TorchServe', why: NO_GRPC },
  grpc_management_max_connection_age_ms: { from: 'TorchServe', why: NO_GRPC },
  grpc_inference_max_connection_age_grace_ms: { from: 'TorchServe', why: NO_GRPC },
  grpc_management_max_connection_age_grace_ms: { from: 'TorchServe', why: NO_GRPC },
  ts_open_inference_protocol: { from: 'TorchServe', why: 'Quiver takes Open Inference Protocol JSON tensors on /predictions always' },
  ts_header_key_sequence_id: { from: 'TorchServe', why: 'Quiver has no sequence batching' },
  ts_header_key_sequence_start: { from: 'TorchServe', why: 'Quiver has no sequence batching' },
  ts_header_key_sequence_end: { from: 'TorchServe', why: 'Quiver has no sequence batching' },
  version: { from: 'TorchServe', why: 'Quiver writes no config snapshots to version' },
  model_api_enabled: { from: 'TorchServe', why: 'the management API is always on, on management_address (loopback by default)' },
  workflow_store: { from: 'TorchServe', why: 'Quiver has no workflows' },
  models: { from: 'TorchServe', why: 'give per-model settings at registration (batch_size, max_batch_delay, response_timeout, initial_workers) or in the model\'s model-config.json' },
  limit_max_image_pixels: { from: 'TorchServe', why: 'images are always limited: set max_image_pixels' },
  disable_token_authorization: { from: 'TorchServe', why: 'write token_auth=off (or serve with --disable-token-auth)' },
  enable_model_api: { from: 'TorchServe', why: 'the management API is always on, on management_address (loopback by default)' },
  token_expiration_min: { from: 'TorchServe', why: 'keys do not expire; remove the key file and restart to make new ones' },
  ipex_enable: { from: 'TorchServe', why: PYTHON },
  ipex_gpu_enable: { from: 'TorchServe', why: PYTHON },
  cpu_launcher_enable: { from: 'TorchServe', why: PYTHON },
  cpu_launcher_args: { from: 'TorchServe', why: PYTHON },
  cpp_log_config: { from: 'TorchServe', why: 'logs are written by pino; set log_level and log_format' },
};

/** The start-up error's text for a key Quiver does not have, naming MMS's and TorchServe's keys as such. */
export function unknownKeyMessage(key: string): string {
  const foreign = Object.hasOwn(FOREIGN_KEYS, key) ? FOREIGN_KEYS[key] : undefined;
  if (!foreign) return `unknown key ${key}`;
  return `${foreign.from} key ${key} is not used by Quiver: remove it (${foreign.why})`;
}
