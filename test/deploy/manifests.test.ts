// The KServe and ModelMesh examples in deploy/ agree with Quiver's config: every flag and environment
// variable they set is one Quiver reads, and the ports they declare are the ones Quiver then listens on.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { RawFlags, loadConfig, parseAddress } from '../../src/config/load';
import { CONFIG_SCHEMA } from '../../src/config/schema';
import { tokenAuthFor } from '../../src/http/token-auth';

const DEPLOY = path.resolve(__dirname, '..', '..', '..', 'deploy');
const read = (file: string): any => parse(fs.readFileSync(path.join(DEPLOY, file), 'utf8'));

/** Environment variables Quiver reads that are not its own QUIVER_* keys (ModelMesh's). */
const FOREIGN_ENV = ['INTERNAL_GRPC_PORT', 'INTERNAL_GRPC_SOCKET_PATH', 'INTERNAL_SERVING_GRPC_PORT', 'INTERNAL_SERVING_GRPC_SOCKET_PATH'];
const FLAGS = new Set(CONFIG_SCHEMA.map((e) => e.flag));
const ENVS = new Set([...CONFIG_SCHEMA.map((e) => e.env), ...FOREIGN_ENV]);

interface Container {
  args: string[];
  env?: { name: string; value: string }[];
  ports?: { containerPort: number }[];
  readinessProbe?: { httpGet: { path: string; port: number } };
}

/** The container's args as the CLI reads them, and the config they and its env give. */
function configOf(container: Container, name = 'ocr-cls') {
  expect(container.args[0]).toBe('serve');
  const flags: RawFlags = {};
  for (const arg of container.args.slice(1)) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg.replace('{{.Name}}', name));
    expect(match).not.toBeNull();
    const [, flag, value] = match!;
    expect(FLAGS.has(flag)).toBe(true);
    flags[flag] = value;
  }
  const env: NodeJS.ProcessEnv = {};
  for (const e of container.env ?? []) {
    expect(ENVS.has(e.name)).toBe(true);
    env[e.name] = e.value;
  }
  return loadConfig(flags, env, fs.mkdtempSync('/tmp/quiver-deploy-'));
}

const port = (endpoint: string) => Number(/^port:(\d+)$/.exec(endpoint)![1]);

test('KServe ServingRuntime: the REST port it declares and probes is the inference address; v2 is on', () => {
  const runtime = read('kserve/serving-runtime.yaml');
  expect(runtime).toMatchObject({ apiVersion: 'serving.kserve.io/v1alpha1', kind: 'ServingRuntime', spec: { protocolVersions: expect.arrayContaining(['v2']) } });
  expect(runtime.spec.supportedModelFormats).toContainEqual(expect.objectContaining({ name: 'onnx' }));
  const container: Container = runtime.spec.containers[0];
  const config = configOf(container);
  const inference = parseAddress(config.inference_address);
  expect(container.ports![0].containerPort).toBe(inference.port);
  expect(inference.host).toBe('0.0.0.0');
  expect(container.readinessProbe!.httpGet).toEqual({ path: '/v2/health/ready', port: inference.port });
  // KServe's storage initializer puts the model at /mnt/models; the runtime serves it by the InferenceService's name.
  expect(config.model_store).toBe('/mnt');
  expect(config.load_models).toEqual(['ocr-cls=models']);
  expect(parseAddress(config.grpc_inference_address).port).toBe(8001);
  // KServe's clients and probes send no token: ports bound beyond loopback must not ask for one.
  expect(tokenAuthFor(config)).toEqual({ inference: false, management: false, grpc: false });
  // KServe's metrics annotations would point at a port without /metrics.
  expect(JSON.stringify(runtime)).not.toContain('prometheus.kserve.io');

  const isvc = read('kserve/inference-service.yaml');
  expect(isvc).toMatchObject({ kind: 'InferenceService', spec: { predictor: { model: { runtime: runtime.metadata.name, protocolVersion: 'v2', modelFormat: { name: 'onnx' } } } } });
});

test('ModelMesh ServingRuntime: grpcEndpoint is where mmesh.ModelRuntime listens, grpcDataEndpoint the inference service', () => {
  const runtime = read('modelmesh/serving-runtime.yaml');
  // protocolVersions gives the runtime the pv:grpc-v2 label an InferenceService naming that protocol is placed by.
  expect(runtime).toMatchObject({ kind: 'ServingRuntime', spec: { multiModel: true, protocolVersions: ['grpc-v2'] } });
  const container = runtime.spec.containers[0];
  // The capacity reported is a share of the limit: the pod must be given that much, not only allowed it.
  expect(container.resources.requests.memory).toBe(container.resources.limits.memory);
  const config = configOf(container);
  expect(config.modelmesh_address).not.toBe('off');
  expect(parseAddress(config.modelmesh_address).port).toBe(port(runtime.spec.grpcEndpoint));
  expect(parseAddress(config.grpc_inference_address).port).toBe(port(runtime.spec.grpcDataEndpoint));
  // ModelMesh's puller leaves models under /models: loadModel paths must be inside the store.
  expect(config.model_store).toBe('/models');
  // ModelMesh loads the models itself.
  expect(config.load_models).toEqual([]);
  // The pod's network is shared: Quiver's ports must miss those of ModelMesh (8080 its own, 8085 is the
  // runtime port it gives us), its puller (8086), its metrics (2112) and its other listeners.
  const quiverPorts = [config.inference_address, config.management_address, config.grpc_inference_address].map((a) => parseAddress(a).port);
  for (const taken of [8080, 8086, 8089, 8090, 8008, 8033, 2112]) expect(quiverPorts).not.toContain(taken);
  expect(new Set([...quiverPorts, parseAddress(config.modelmesh_address).port]).size).toBe(4);
  // Only ModelMesh, in the pod, calls the runtime: every listener on loopback, so no token is asked.
  expect(tokenAuthFor(config)).toEqual({ inference: false, management: false, grpc: false });

  const isvc = read('modelmesh/inference-service.yaml');
  expect(isvc.metadata.annotations['serving.kserve.io/deploymentMode']).toBe('ModelMesh');
  expect(isvc.spec.predictor.model.runtime).toBe(runtime.metadata.name);
});

test('ModelMesh\'s variables give the addresses', () => {
  const config = loadConfig({}, { INTERNAL_GRPC_SOCKET_PATH: '/var/run/mm.sock' }, fs.mkdtempSync('/tmp/quiver-deploy-'));
  expect(config.modelmesh_address).toBe('unix:/var/run/mm.sock');
  expect(loadConfig({}, {}, fs.mkdtempSync('/tmp/quiver-deploy-')).modelmesh_address).toBe('off');
  // ModelMesh's serving port, when it names one, is where the inference service listens.
  expect(loadConfig({}, { INTERNAL_SERVING_GRPC_PORT: '8033' }, fs.mkdtempSync('/tmp/quiver-deploy-')).grpc_inference_address).toBe('127.0.0.1:8033');
  expect(loadConfig({}, { INTERNAL_SERVING_GRPC_SOCKET_PATH: '/run/s.sock' }, fs.mkdtempSync('/tmp/quiver-deploy-')).grpc_inference_address).toBe('unix:/run/s.sock');
});
