// Model versions driven the way TorchServe's management docs show: several versions of one name,
// /predictions/{name}/{version}, describe /all and /{version}, set-default, per-version scale and
// unregister; the snapshot brings versions and the default back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { zip } from '../fixtures/archives';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

const mar = (version: string, bias: number) =>
  zip([
    { name: 'MAR-INF/MANIFEST.json', content: JSON.stringify({ runtime: 'node', model: { modelName: 'noop', modelVersion: version } }) },
    { name: 'model.onnx', content: addModel([bias]) },
  ]);

function writeStore(store: string): void {
  fs.writeFileSync(path.join(store, 'noop_v1.mar'), mar('1.0', 1));
  fs.writeFileSync(path.join(store, 'noop_v2.mar'), mar('2.0', 2));
  writeModelFolder(path.join(store, 'noop-three'), addModel([3]));
}

const answerOf = async (r: Response) => (await json(r)).y[0][0] as number;

describe('model versions', () => {
  let s: TestServer;
  const workDir = tempDir('versions-work');
  const store = tempDir('versions-store');
  writeStore(store);
  const register = (query: string) => fetch(`${s.management}/models?${query}`, { method: 'POST' });
  const predict = (target: string) => postJson(`${s.inference}/predictions/${target}`, { x: [[0]] });

  beforeAll(async () => {
    s = await startServer({ workers: '2', 'model-store': store, 'work-dir': workDir });
  });
  afterAll(async () => {
    await s.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  test('several versions of one name, each answering on its own route; the first is the default', async () => {
    expect((await register('url=noop_v1.mar')).status).toBe(200);
    expect((await register('url=noop_v2.mar')).status).toBe(200);
    expect((await register('url=noop-three&model_name=noop&model_version=3.0')).status).toBe(200);
    const again = await register('url=noop_v2.mar');
    expect(again.status).toBe(409);

    expect(await answerOf(await predict('noop'))).toBe(1);
    expect(await answerOf(await predict('noop/2.0'))).toBe(2);
    expect(await answerOf(await predict('noop/3.0'))).toBe(3);
    const missing = await predict('noop/9.9');
    expect(missing.status).toBe(404);
    expect((await json(missing)).type).toBe('ModelVersionNotFoundException');

    expect((await json(await fetch(`${s.management}/models/noop`))).modelVersion).toBe('1.0');
    const all = await json(await fetch(`${s.management}/models/noop/all`));
    expect(all.map((d: { modelVersion: string }) => d.modelVersion)).toEqual(['1.0', '2.0', '3.0']);
    const two = await json(await fetch(`${s.management}/models/noop/2.0`));
    expect(two).toHaveLength(1);
    expect(two[0]).toMatchObject({ modelName: 'noop', modelVersion: '2.0', status: 'READY' });
    // The list shows the name once.
    expect((await json(await fetch(`${s.management}/models`))).models).toEqual([{ modelName: 'noop', modelUrl: 'noop_v1.mar' }]);
  });

  test('set-default moves unversioned requests; the default cannot be unregistered while others remain', async () => {
    const set = await fetch(`${s.management}/models/noop/2.0/set-default`, { method: 'PUT' });
    expect(set.status).toBe(200);
    expect(await json(set)).toEqual({ status: 'Default vesion succsesfully updated for model "noop" to "2.0"' });
    expect(await answerOf(await predict('noop'))).toBe(2);
    expect((await fetch(`${s.management}/models/noop/7.0/set-default`, { method: 'PUT' })).status).toBe(404);

    const refused = await fetch(`${s.management}/models/noop`, { method: 'DELETE' });
    expect(refused.status).toBe(400);
    expect((await json(refused)).type).toBe('InvalidModelVersionException');
    const removed = await fetch(`${s.management}/models/noop/1.0`, { method: 'DELETE' });
    expect(await json(removed)).toEqual({ status: 'Model "noop" version: 1.0 unregistered' });
    expect((await predict('noop/1.0')).status).toBe(404);
    expect(await answerOf(await predict('noop'))).toBe(2);
  });

  test('each version scales on its own', async () => {
    const scaled = await fetch(`${s.management}/models/noop/3.0?min_worker=2&synchronous=true`, { method: 'PUT' });
    expect(scaled.status).toBe(200);
    const [three] = await json(await fetch(`${s.management}/models/noop/3.0`));
    const [two] = await json(await fetch(`${s.management}/models/noop/2.0`));
    expect(three.workers).toHaveLength(2);
    expect(two.workers).toHaveLength(1);
  });

  test('switching the default under load loses no request, and each answer is a version that was default', async () => {
    let switching = true;
    const switches = (async () => {
      for (let i = 0; switching; i++) {
        const r = await fetch(`${s.management}/models/noop/${i % 2 === 0 ? '3.0' : '2.0'}/set-default`, { method: 'PUT' });
        expect(r.status).toBe(200);
      }
    })();
    const answers: number[] = [];
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 15; i++) {
          const r = await predict('noop');
          statuses.push(r.status);
          answers.push(r.status === 200 ? await answerOf(r) : -1);
        }
      }),
    );
    switching = false;
    await switches;
    expect(statuses.every((st) => st === 200)).toBe(true);
    expect(answers.every((a) => a === 2 || a === 3)).toBe(true);
    expect(new Set(answers).size).toBe(2);
  });

  test('a restart brings back every version and the default from the snapshot', async () => {
    await fetch(`${s.management}/models/noop/3.0/set-default`, { method: 'PUT' });
    await s.server.close();
    // As the supervisor starts a server after a crash.
    s = await startServer({ workers: '2', 'model-store': store, 'work-dir': workDir }, {}, { restoreSnapshot: true });
    const all = await json(await fetch(`${s.management}/models/noop/all`));
    expect(all.map((d: { modelVersion: string }) => d.modelVersion).sort()).toEqual(['2.0', '3.0']);
    expect((await json(await fetch(`${s.management}/models/noop`))).modelVersion).toBe('3.0');
    expect(await answerOf(await predict('noop'))).toBe(3);
    expect(await answerOf(await predict('noop/2.0'))).toBe(2);
  });
});
