// The MMS flow over real HTTP: register, scale, describe, predict, list, unregister.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addModel, linearModel, writeModelFolder } from '../fixtures/onnx-models';
import { tarGz, zip } from '../fixtures/archives';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;

beforeAll(async () => {
  s = await startServer({ workers: '3' });
  writeModelFolder(path.join(s.store, 'adder'), addModel([10, 20, 30]));
  fs.writeFileSync(
    path.join(s.store, 'scorer.mar'),
    zip([
      { name: 'MAR-INF/MANIFEST.json', content: JSON.stringify({ runtime: 'node', model: { modelName: 'scorer', modelVersion: '3.0' } }) },
      { name: 'model.onnx', content: linearModel([[1, 0, 0], [0, 1, 0]]) },
      { name: 'model-config.json', content: JSON.stringify({ postprocess: { type: 'topk', k: 3, labels: ['cat', 'dog', 'fox'] } }) },
    ]),
  );
  fs.writeFileSync(path.join(s.store, 'packed.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([0.5]) }]));
});

afterAll(async () => s.close());

const register = (query: string) => fetch(`${s.management}/models?${query}`, { method: 'POST' });

describe('MMS management and inference APIs', () => {
  test('register → describe → predict → scale → unregister', async () => {
    const registered = await register('url=adder&initial_workers=1&synchronous=true');
    expect(registered.status).toBe(200);
    expect(await json(registered)).toEqual({ status: 'Model "adder" registered' });

    const described = await json(await fetch(`${s.management}/models/adder`));
    expect(described).toMatchObject({ modelName: 'adder', modelUrl: 'adder', modelVersion: '1.0', minWorkers: 1, status: 'READY' });
    expect(described.workers).toHaveLength(1);
    expect(described.workers[0]).toMatchObject({ status: 'READY', gpu: false });
    expect(described.workers[0].memoryUsage).toBeGreaterThan(0);

    const predicted = await postJson(`${s.inference}/predictions/adder`, { x: [[1, 2, 3], [4, 5, 6]] });
    expect(predicted.status).toBe(200);
    expect(predicted.headers.get('x-request-id')).toBeTruthy();
    expect(await json(predicted)).toEqual({ y: [[11, 22, 33], [14, 25, 36]] });

    const scaled = await fetch(`${s.management}/models/adder?min_worker=3&synchronous=true`, { method: 'PUT' });
    expect(scaled.status).toBe(200);
    expect((await json(await fetch(`${s.management}/models/adder`))).workers).toHaveLength(3);
    const asyncScale = await fetch(`${s.management}/models/adder?min_worker=2`, { method: 'PUT' });
    expect(asyncScale.status).toBe(202);

    const removed = await fetch(`${s.management}/models/adder`, { method: 'DELETE' });
    expect(await json(removed)).toEqual({ status: 'Model "adder" unregistered' });
    expect((await postJson(`${s.inference}/predictions/adder`, { x: [[1, 2, 3]] })).status).toBe(404);
    expect((await fetch(`${s.management}/models/adder`)).status).toBe(404);
  });

  test('a .mar archive: name and version from its manifest, top-k answer, versioned route', async () => {
    expect((await register('url=scorer.mar')).status).toBe(200);
    const answer = await json(await postJson(`${s.inference}/predictions/scorer/3.0`, { x: [[0, 5]] }));
    expect(answer.map((c: { label: string }) => c.label)).toEqual(['dog', 'cat', 'fox']);
    expect(answer.reduce((sum: number, c: { probability: number }) => sum + c.probability, 0)).toBeCloseTo(1, 5);
    const wrongVersion = await postJson(`${s.inference}/predictions/scorer/9.9`, { x: [[0, 5]] });
    expect(wrongVersion.status).toBe(404);
  });

  test('a .tar.gz registered under a chosen name, its workers started asynchronously (202)', async () => {
    const accepted = await register('url=packed.tar.gz&model_name=half&initial_workers=1&synchronous=false');
    expect(accepted.status).toBe(202);
    // A request arriving during the load waits for it.
    const answer = await json(await postJson(`${s.inference}/predictions/half`, { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [1] }] }));
    expect(answer).toEqual({ model_name: 'half', model_version: '1.0', outputs: [{ name: 'y', shape: [1, 1], datatype: 'FP32', data: [1.5] }] });
  });

  test('409 for a second registration, 404 for an unknown artifact or model, 400 for bad parameters', async () => {
    expect((await register('url=adder&model_name=dup')).status).toBe(200);
    const again = await register('url=adder&model_name=dup');
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ code: 409, type: 'ConflictStatusException' });
    expect((await register('url=missing.mar')).status).toBe(404);
    expect((await register('model_name=x')).status).toBe(400);
    expect((await register('url=adder&model_name=x&initial_workers=lots')).status).toBe(400);
    expect((await register('url=adder&model_name=..%2F..%2Fetc')).status).toBe(400);
    expect((await fetch(`${s.management}/models/nope`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${s.management}/models/nope?min_worker=1`, { method: 'PUT' })).status).toBe(404);
  });

  test('lists models with pagination', async () => {
    for (const name of ['p1', 'p2', 'p3']) expect((await register(`url=adder&model_name=${name}&initial_workers=0`)).status).toBe(200);
    const all = await json(await fetch(`${s.management}/models?limit=1000`));
    const names: string[] = all.models.map((m: { modelName: string }) => m.modelName);
    expect(names).toEqual(expect.arrayContaining(['p1', 'p2', 'p3']));
    const first = await json(await fetch(`${s.management}/models?limit=2`));
    expect(first.models).toHaveLength(2);
    const second = await json(await fetch(`${s.management}/models?limit=2&next_page_token=${first.nextPageToken}`));
    expect(second.models[0].modelName).toBe(names[2]);
  });

  test('OPTIONS / describes each API in OpenAPI 3', async () => {
    const inference = await json(await fetch(`${s.inference}/`, { method: 'OPTIONS' }));
    expect(inference.openapi).toBe('3.0.1');
    expect(Object.keys(inference.paths)).toContain('/predictions/{model_name}');
    const management = await json(await fetch(`${s.management}/`, { method: 'OPTIONS' }));
    expect(Object.keys(management.paths)).toEqual(expect.arrayContaining(['/models', '/models/{model_name}']));
  });

  test('ping, and the management API is not on the inference port', async () => {
    expect(await json(await fetch(`${s.inference}/ping`))).toEqual({ status: 'Healthy' });
    const wrongPort = await fetch(`${s.inference}/models`);
    expect(wrongPort.status).toBe(404);
    expect(await json(wrongPort)).toMatchObject({ code: 404, type: 'ResourceNotFoundException' });
  });
});
