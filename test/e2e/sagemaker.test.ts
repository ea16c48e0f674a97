// The SageMaker multi-model container contract over real HTTP, on one port.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { tarGz } from '../fixtures/archives';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;
const ECHO_HANDLER = `module.exports = {
  postprocess(outputs, ctx) { return { y: Array.from(outputs.y.data), attributes: ctx.customAttributes ?? null }; },
};`;

beforeAll(async () => {
  s = await startServer({ mode: 'sagemaker' });
  // As SageMaker lays models out: /opt/ml/models/{name}/model
  for (const [name, bias] of [['m1', 1], ['m2', 2]] as const) {
    writeModelFolder(path.join(s.store, name, 'model'), addModel([bias]), { handler: 'handler.js' }, { 'handler.js': ECHO_HANDLER });
  }
  fs.writeFileSync(path.join(s.store, 'packed.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([7]) }]));
  fs.mkdirSync(path.join(s.store, 'team'));
  fs.writeFileSync(path.join(s.store, 'team', 'other.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([70]) }]));
});

afterAll(async () => s.close());

const load = (model_name: string, url: string) => postJson(`${s.inference}/models`, { model_name, url });
const invoke = (name: string, x: number, headers: Record<string, string> = {}) => postJson(`${s.inference}/models/${name}/invoke`, { x: [[x]] }, headers);

describe('SageMaker multi-model contract', () => {
  test('ping', async () => {
    expect((await fetch(`${s.inference}/ping`)).status).toBe(200);
  });

  test('load → list → describe → invoke → unload', async () => {
    const url = path.join(s.store, 'm1', 'model');
    expect((await load('m1', url)).status).toBe(200);
    expect((await load('m1', url)).status).toBe(409);

    const listed = await json(await fetch(`${s.inference}/models`));
    expect(listed.models).toContainEqual({ modelName: 'm1', modelUrl: url });
    expect(await json(await fetch(`${s.inference}/models/m1`))).toMatchObject({ modelName: 'm1', modelUrl: url });

    const answer = await invoke('m1', 5, { 'X-Amzn-SageMaker-Custom-Attributes': 'trace=abc', 'X-Amzn-SageMaker-Target-Model': 'm1.tar.gz' });
    expect(answer.status).toBe(200);
    expect(await json(answer)).toEqual({ y: [6], attributes: 'trace=abc' });

    expect((await fetch(`${s.inference}/models/m1`, { method: 'DELETE' })).status).toBe(200);
    expect((await invoke('m1', 5)).status).toBe(404);
    expect((await fetch(`${s.inference}/models/m1`)).status).toBe(404);
    expect((await fetch(`${s.inference}/models/m1`, { method: 'DELETE' })).status).toBe(404);
  });

  test('pagination with page_size and next_page_token', async () => {
    expect((await load('m2', path.join(s.store, 'm2', 'model'))).status).toBe(200);
    expect((await load('m2b', path.join(s.store, 'm2', 'model'))).status).toBe(200);
    const first = await json(await fetch(`${s.inference}/models?page_size=1`));
    expect(first.models).toHaveLength(1);
    expect(first.nextPageToken).toBeDefined();
    const second = await json(await fetch(`${s.inference}/models?page_size=1&next_page_token=${first.nextPageToken}`));
    expect(second.models[0].modelName).not.toBe(first.models[0].modelName);
  });

  test('bad load requests: malformed body 400, missing artifact 404, outside the model root 400', async () => {
    const malformed = await fetch(`${s.inference}/models`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model_name":' });
    expect(malformed.status).toBe(400);
    expect(await json(malformed)).toMatchObject({ code: 400 });
    expect((await postJson(`${s.inference}/models`, { url: '/x' })).status).toBe(400);
    expect((await load('ghost', path.join(s.store, 'ghost', 'model'))).status).toBe(404);
    expect((await load('escape', '/etc')).status).toBe(400);
  });

  test('POST /invocations loads the target model on first use, once, even under concurrent requests', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => postJson(`${s.inference}/invocations`, { x: [[i]] }, { 'X-Amzn-SageMaker-Target-Model': 'packed.tar.gz' })),
    );
    for (const [i, r] of answers.entries()) {
      expect(r.status).toBe(200);
      expect(await json(r)).toEqual({ y: [[7 + i]] });
    }
    const nested = await postJson(`${s.inference}/invocations`, { x: [[0]] }, { 'X-Amzn-SageMaker-Target-Model': 'team/other.tar.gz' });
    expect(await json(nested)).toEqual({ y: [[70]] });
    // A target path is a name with '/': still reachable by its URL.
    expect(await json(await postJson(`${s.inference}/predictions/team/other.tar.gz`, { x: [[1]] }))).toEqual({ y: [[71]] });
    expect(await json(await postJson(`${s.inference}/models/team%2Fother.tar.gz/invoke`, { x: [[2]] }))).toEqual({ y: [[72]] });
    const listed = await json(await fetch(`${s.inference}/models?page_size=1000`));
    expect(listed.models.filter((m: { modelName: string }) => m.modelName === 'packed.tar.gz')).toHaveLength(1);
  });

  test('/invocations refuses a missing or escaping target model', async () => {
    expect((await postJson(`${s.inference}/invocations`, { x: [[1]] })).status).toBe(400);
    const escaping = await postJson(`${s.inference}/invocations`, { x: [[1]] }, { 'X-Amzn-SageMaker-Target-Model': '../../etc/passwd' });
    expect(escaping.status).toBe(400);
    expect(await json(escaping)).toMatchObject({ type: 'UnsafePathException' });
    const missing = await postJson(`${s.inference}/invocations`, { x: [[1]] }, { 'X-Amzn-SageMaker-Target-Model': 'nothing.tar.gz' });
    expect(missing.status).toBe(404);
  });

  test('custom attributes over 1024 characters are refused', async () => {
    expect((await load('m3', path.join(s.store, 'm2', 'model'))).status).toBe(200);
    expect((await invoke('m3', 1, { 'X-Amzn-SageMaker-Custom-Attributes': 'a'.repeat(1025) })).status).toBe(400);
  });
});
