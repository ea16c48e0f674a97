// The MMS/TorchServe management calls as their docs and test collections make them: registration
// semantics (200/202, JSON bodies, defaults), model URLs over http(s) checked against allowed_urls,
// scaling past what the pool allows, and names that must stay reachable.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { tarGz, zip } from '../fixtures/archives';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, TestServer } from '../fixtures/server';

let s: TestServer;
let origin: server;
let base: string;
const served: string[] = [];

type server = http.Server;

const plusTen = tarGz([{ name: 'model.onnx', content: addModel([10]) }]);
const halfMar = zip([
  { name: 'MAR-INF/MANIFEST.json', content: JSON.stringify({ runtime: 'python', model: { modelName: 'half', modelVersion: '2.0' } }) },
  { name: 'model.onnx', content: addModel([0.5]) },
]);

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    served.push(req.url ?? '');
    const routes: Record<string, () => void> = {
      '/models/plus-ten.tar.gz': () => res.writeHead(200, { 'content-type': 'application/gzip', etag: '"p10"' }).end(plusTen),
      '/models/half.mar': () => res.writeHead(200).end(halfMar),
      '/models/moved': () => res.writeHead(302, { location: '/models/plus-ten.tar.gz' }).end(),
      // As release downloads do: the URL names the file, the redirect ends in a hash.
      '/models/plus-ten.onnx': () => res.writeHead(302, { location: '/models/blob/5f3a9c' }).end(),
      '/models/blob/5f3a9c': () => res.writeHead(200, { 'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT' }).end(addModel([10])),
      '/models/away': () => res.writeHead(302, { location: `http://localhost:${(origin.address() as AddressInfo).port}/elsewhere/plus-ten.tar.gz` }).end(),
      '/models/forbidden.mar': () => res.writeHead(403).end('no'),
      '/models/cut.tar.gz': () => {
        res.writeHead(200, { 'content-length': String(plusTen.length) });
        res.write(plusTen.subarray(0, 20));
        res.destroy();
      },
    };
    (routes[req.url ?? ''] ?? (() => res.writeHead(404).end('not found')))();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  s = await startServer({ workers: '1', 'max-worker-threads': '3', 'allowed-urls': 'http://127\\.0\\.0\\.1:\\d+/models/.*' });
  writeModelFolder(path.join(s.store, 'adder'), addModel([1, 2, 3]));
});

afterAll(async () => {
  await s.close();
  await new Promise((resolve) => origin.close(resolve));
});

const register = (query: string) => fetch(`${s.management}/models?${query}`, { method: 'POST' });
const predict = (name: string, x: number[][]) => postJson(`${s.inference}/predictions/${name}`, { x });

describe('registration as MMS answers it', () => {
  test('no initial_workers: 200 "registered", also with synchronous=false', async () => {
    const sync = await register('url=adder&model_name=a1');
    expect(sync.status).toBe(200);
    expect(await json(sync)).toEqual({ status: 'Model "a1" registered' });
    const lazy = await register('url=adder&model_name=a2&synchronous=false');
    expect(lazy.status).toBe(200);
    expect(await json(lazy)).toEqual({ status: 'Model "a2" registered' });
    expect(await json(await predict('a2', [[0, 0, 0]]))).toEqual({ y: [[1, 2, 3]] });
  });

  test('initial_workers with synchronous=false: 202 while they start; with synchronous=true: 200 once loaded', async () => {
    const accepted = await register('url=adder&model_name=a3&initial_workers=1&synchronous=false');
    expect(accepted.status).toBe(202);
    expect(await json(accepted)).toEqual({ status: 'Processing worker updates...' });
    const loaded = await register('url=adder&model_name=a4&initial_workers=1&synchronous=true');
    expect(loaded.status).toBe(200);
    expect((await json(await fetch(`${s.management}/models/a4`))).workers).toHaveLength(1);
  });

  test('a body that is not JSON leaves the parameters to the query', async () => {
    const r = await fetch(`${s.management}/models?url=adder&model_name=a6`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'url=elsewhere' });
    expect(r.status).toBe(200);
    expect((await json(await fetch(`${s.management}/models/a6`))).modelUrl).toBe('adder');
  });

  test('a JSON body with the same keys as the query', async () => {
    const r = await postJson(`${s.management}/models`, { url: 'adder', model_name: 'a5', initial_workers: 1, synchronous: true, batch_size: 4 });
    expect(r.status).toBe(200);
    expect(await json(await fetch(`${s.management}/models/a5`))).toMatchObject({ modelName: 'a5', batchSize: 4, minWorkers: 1 });
  });

  test('missing url 400, empty url 404, an unknown runtime 400, an unreachable name 400', async () => {
    expect((await register('model_name=x')).status).toBe(400);
    expect(await json(await register('url=&model_name=x'))).toMatchObject({ code: 404 });
    const runtime = await register('url=adder&model_name=x&runtime=python4');
    expect(runtime.status).toBe(400);
    expect((await json(runtime)).message).toMatch(/runtime "python4"/);
    const slash = await register('url=adder&model_name=team%2Fmodel');
    expect(slash.status).toBe(400);
    expect((await json(slash)).message).toMatch(/'\/' would make \/predictions\/\{name\}\/\{version\} ambiguous/);
    expect((await fetch(`${s.management}/models/x`)).status).toBe(404);
  });
});

describe('model URLs over http(s), checked against allowed_urls', () => {
  test('an allowed archive URL is downloaded, named from its file, and answers', async () => {
    const r = await register(`url=${encodeURIComponent(`${base}/models/plus-ten.tar.gz`)}`);
    expect(r.status).toBe(200);
    expect(await json(r)).toEqual({ status: 'Model "plus-ten" registered' });
    expect(await json(await predict('plus-ten', [[1]]))).toEqual({ y: [[11]] });
    expect((await json(await fetch(`${s.management}/models/plus-ten`))).modelUrl).toBe(`${base}/models/plus-ten.tar.gz`);
  });

  test('a .mar URL takes its name and version from the manifest; a redirect inside the allowed URLs is followed', async () => {
    expect((await register(`url=${encodeURIComponent(`${base}/models/half.mar`)}`)).status).toBe(200);
    expect(await json(await predict('half/2.0', [[1]]))).toEqual({ y: [[1.5]] });
    expect((await register(`url=${encodeURIComponent(`${base}/models/moved`)}&model_name=moved`)).status).toBe(200);
    expect(await json(await predict('moved', [[0]]))).toEqual({ y: [[10]] });
  });

  test('a bare .onnx behind a redirect is named and typed by the URL the client gave', async () => {
    const r = await register(`url=${encodeURIComponent(`${base}/models/plus-ten.onnx`)}&model_name=bare`);
    expect(await json(r)).toEqual({ status: 'Model "bare" registered' });
    expect(await json(await predict('bare', [[2]]))).toEqual({ y: [[12]] });
  });

  test('a URL that allowed_urls does not list is refused before anything is fetched', async () => {
    const before = served.length;
    for (const url of [`${base}/elsewhere/plus-ten.tar.gz`, 'https://example.com/models/x.mar', 's3://bucket/model.tar.gz']) {
      const r = await register(`url=${encodeURIComponent(url)}&model_name=refused`);
      expect(r.status).toBe(404);
      expect(await json(r)).toMatchObject({ type: 'UrlNotAllowedException', message: expect.stringContaining(`Given URL ${url} does not match any allowed URL(s)`) });
    }
    expect(served.length).toBe(before);
    // A redirect out of the allowed URLs is refused at that hop.
    const away = await register(`url=${encodeURIComponent(`${base}/models/away`)}&model_name=refused`);
    expect(away.status).toBe(404);
    expect(served.slice(before)).toEqual(['/models/away']);
    expect((await fetch(`${s.management}/models/refused`)).status).toBe(404);
  });

  test('a URL the remote server refuses is a 400, a cut-off download a 502; nothing is registered', async () => {
    for (const [file, status, type] of [['missing.mar', 400, 'DownloadArchiveException'], ['forbidden.mar', 400, 'DownloadArchiveException'], ['cut.tar.gz', 502, 'ArtifactDownloadException']] as const) {
      const r = await register(`url=${encodeURIComponent(`${base}/models/${file}`)}&model_name=broken`);
      expect(r.status).toBe(status);
      expect(await json(r)).toMatchObject({ code: status, type });
    }
    expect((await fetch(`${s.management}/models/broken`)).status).toBe(404);
  });
});

describe('scaling within what the pool allows', () => {
  test('concurrent scales of one model end with the count of the last, not their sum', async () => {
    expect((await register('url=adder&model_name=racy&initial_workers=1&synchronous=true')).status).toBe(200);
    const scales = await Promise.all([2, 3, 2].map((n) => fetch(`${s.management}/models/racy?min_worker=${n}&synchronous=true`, { method: 'PUT' })));
    expect(scales.map((r) => r.status)).toEqual([200, 200, 200]);
    const described = await json(await fetch(`${s.management}/models/racy`));
    expect(described.workers).toHaveLength(2);
    expect(described.minWorkers).toBe(2);
  });

  test('more workers than threads grows the pool, up to max_worker_threads; past it, an error that says the limit', async () => {
    expect((await register('url=adder&model_name=wide&initial_workers=1&synchronous=true')).status).toBe(200);
    const grown = await fetch(`${s.management}/models/wide?min_worker=3&synchronous=true`, { method: 'PUT' });
    expect(grown.status).toBe(200);
    const described = await json(await fetch(`${s.management}/models/wide`));
    expect(described.workers.map((w: { id: string }) => w.id).sort()).toEqual(['0', '1', '2']);
    expect(await json(await predict('wide', [[1, 1, 1]]))).toEqual({ y: [[2, 3, 4]] });

    const tooMany = await fetch(`${s.management}/models/wide?min_worker=4&synchronous=true`, { method: 'PUT' });
    expect(tooMany.status).toBe(400);
    expect((await json(tooMany)).message).toMatch(/min_worker=4 .* at most 3 threads \(max_worker_threads\)/);
    const maxTooMany = await fetch(`${s.management}/models/wide?min_worker=1&max_worker=9`, { method: 'PUT' });
    expect(maxTooMany.status).toBe(400);
    expect((await json(await register('url=adder&model_name=w2&initial_workers=5'))).message).toMatch(/initial_workers=5/);
    expect((await json(await fetch(`${s.management}/models/wide`))).workers).toHaveLength(3);
    const inverted = await fetch(`${s.management}/models/wide?min_worker=3&max_worker=2`, { method: 'PUT' });
    expect(inverted.status).toBe(400);
  });
});
