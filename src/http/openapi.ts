// OpenAPI 3.0.1 descriptions answered on OPTIONS /, as MMS does.

interface Operation {
  method: 'get' | 'post' | 'put' | 'delete' | 'options';
  path: string;
  summary: string;
  query?: string[];
  statuses: number[];
}

const INFERENCE_OPERATIONS: Operation[] = [
  { method: 'options', path: '/', summary: 'This description of the inference API.', statuses: [200] },
  { method: 'get', path: '/ping', summary: 'Health of the server.', statuses: [200, 503] },
  { method: 'post', path: '/predictions/{model_name}', summary: 'Run the model on an image, JSON tensors (sniffed when the body has no Content-Type) or the data/body fields of a form.', statuses: [200, 400, 404, 413, 415, 500, 503] },
  { method: 'post', path: '/predictions/{model_name}/{model_version}', summary: 'Run one version of the model.', statuses: [200, 400, 404, 413, 415, 500, 503] },
  { method: 'put', path: '/predictions/{model_name}', summary: 'The same as POST (what `curl -T file` sends).', statuses: [200, 400, 404, 413, 415, 500, 503] },
];

const MANAGEMENT_OPERATIONS: Operation[] = [
  { method: 'options', path: '/', summary: 'This description of the management API.', statuses: [200] },
  { method: 'post', path: '/models', summary: 'Register a model from a folder or archive in the model store.', query: ['url', 'model_name', 'model_version', 'initial_workers', 'synchronous', 'batch_size', 'max_batch_delay', 'response_timeout', 'device'], statuses: [200, 202, 400, 404, 409, 500, 503] },
  { method: 'get', path: '/models', summary: 'List registered models.', query: ['limit', 'next_page_token'], statuses: [200, 400] },
  { method: 'get', path: '/models/{model_name}', summary: 'Describe a model: workers, state, memory.', statuses: [200, 404] },
  { method: 'put', path: '/models/{model_name}', summary: 'Scale the workers hosting a model.', query: ['min_worker', 'max_worker', 'synchronous'], statuses: [200, 202, 400, 404] },
  { method: 'delete', path: '/models/{model_name}', summary: 'Unregister a model.', statuses: [200, 404] },
];

function describe(title: string, operations: Operation[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const op of operations) {
    const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ in: 'path', name: m[1], required: true, schema: { type: 'string' } }));
    const queryParams = (op.query ?? []).map((name) => ({ in: 'query', name, required: name === 'url', schema: { type: 'string' } }));
    paths[op.path] ??= {};
    paths[op.path][op.method] = {
      summary: op.summary,
      parameters: [...pathParams, ...queryParams],
      responses: Object.fromEntries(op.statuses.map((s) => [String(s), { description: s < 400 ? 'OK' : 'Error: {"code","type","message"}' }])),
    };
  }
  return { openapi: '3.0.1', info: { title, version: '1.0.0' }, paths };
}

export const inferenceApiDescription = (): object => describe('Quiver inference API', INFERENCE_OPERATIONS);
export const managementApiDescription = (): object => describe('Quiver management API', MANAGEMENT_OPERATIONS);
