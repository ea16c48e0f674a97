// Loads the .proto files in proto/ (written from the published specs) into grpc-js service definitions.
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_DIR = path.resolve(__dirname, '..', '..', '..', 'proto');

// Field names as the specs spell them; int64 as numbers (shapes, sizes); enums by name.
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(path.join(PROTO_DIR, file), LOADER_OPTIONS));
}

let loaded: { inference: grpc.ServiceDefinition; health: grpc.ServiceDefinition; modelRuntime: grpc.ServiceDefinition } | undefined;

type ServiceCtor = grpc.ServiceClientConstructor;

/** The three services' definitions, loaded once per process. */
export function serviceDefinitions(): NonNullable<typeof loaded> {
  if (!loaded) {
    const inference = load('grpc_service.proto').inference as grpc.GrpcObject;
    const health = ((load('health.proto').grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
    const mmesh = load('model-runtime.proto').mmesh as grpc.GrpcObject;
    loaded = {
      inference: (inference.GRPCInferenceService as ServiceCtor).service,
      health: (health.Health as ServiceCtor).service,
      modelRuntime: (mmesh.ModelRuntime as ServiceCtor).service,
    };
  }
  return loaded;
}

/** Client constructors, for tests and benchmarks that drive the server as Triton's and ModelMesh's clients do. */
export function clientConstructors(): { inference: ServiceCtor; health: ServiceCtor; modelRuntime: ServiceCtor } {
  const inference = load('grpc_service.proto').inference as grpc.GrpcObject;
  const health = ((load('health.proto').grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const mmesh = load('model-runtime.proto').mmesh as grpc.GrpcObject;
  return { inference: inference.GRPCInferenceService as ServiceCtor, health: health.Health as ServiceCtor, modelRuntime: mmesh.ModelRuntime as ServiceCtor };
}
