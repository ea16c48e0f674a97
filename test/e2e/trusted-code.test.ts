// Code in a model package runs only when it may: never from an archive that fails its checks, never
// with handlers off, never from a URL allowed_urls does not list.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tarGz } from '../fixtures/archives';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

const marks = tempDir('marks');
/** A handler that leaves a file behind the moment it is loaded. */
const marking = (mark: string) => `require('node:fs').writeFileSync(${JSON.stringify(path.join(marks, mark))}, 'ran');
module.exports = { postprocess(o) { return { y: o.y.data[0] }; } };`;
const config = JSON.stringify({ handler: 'handler.js' });

afterAll(() => fs.rmSync(marks, { recursive: true, force: true }));

describe('handlers on (the default)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => s.close());

  test('a handler in an archive that fails its checks never runs', async () => {
    fs.writeFileSync(path.join(s.store, 'evil.tar.gz'), tarGz([
      { name: 'model.onnx', content: addModel([1]) },
      { name: 'model-config.json', content: config },
      { name: 'handler.js', content: marking('evil') },
      { name: '../escape.txt', content: 'x' },
    ]));
    const r = await fetch(`${s.management}/models?url=evil.tar.gz`, { method: 'POST' });
    expect(r.status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fs.existsSync(path.join(marks, 'evil'))).toBe(false);
  });

  test('a handler in a good archive runs once it is registered', async () => {
    fs.writeFileSync(path.join(s.store, 'good.tar.gz'), tarGz([
      { name: 'model.onnx', content: addModel([1]) },
      { name: 'model-config.json', content: config },
      { name: 'handler.js', content: marking('good') },
    ]));
    expect((await fetch(`${s.management}/models?url=good.tar.gz&synchronous=true`, { method: 'POST' })).status).toBe(200);
    expect(await json(await postJson(`${s.inference}/predictions/good`, { x: [[1]] }))).toEqual({ y: 2 });
    expect(fs.existsSync(path.join(marks, 'good'))).toBe(true);
  });
});

describe('handlers off (--no-handlers)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ 'allow-handlers': 'false' });
  });
  afterAll(async () => s.close());

  test('a package with a handler is refused, and the handler never runs; one without works', async () => {
    writeModelFolder(path.join(s.store, 'handled'), addModel([1]), { handler: 'handler.js' }, { 'handler.js': marking('off') });
    const r = await fetch(`${s.management}/models?url=handled&synchronous=true`, { method: 'POST' });
    expect(r.status).toBe(400);
    expect(await json(r)).toMatchObject({ type: 'HandlerNotAllowedException', message: expect.stringContaining('allow_handlers=false') });
    expect(fs.existsSync(path.join(marks, 'off'))).toBe(false);
    writeModelFolder(path.join(s.store, 'plain'), addModel([1]));
    expect((await fetch(`${s.management}/models?url=plain&synchronous=true`, { method: 'POST' })).status).toBe(200);
  });
});
