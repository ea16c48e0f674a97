// The snapshot is the truth a restart comes back to: a registration or removal it cannot record is
// refused with a 5xx and changes nothing, and no temporary file is left behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

let s: TestServer;
const work = tempDir('snapwork');
const snapshot = path.join(work, 'snapshot.json');

/** A non-empty folder where the snapshot goes: renaming over it fails, for root too. */
function blockSnapshot(): void {
  fs.rmSync(snapshot, { recursive: true, force: true });
  fs.mkdirSync(path.join(snapshot, 'blocked'), { recursive: true });
}

function unblockSnapshot(): void {
  fs.rmSync(snapshot, { recursive: true, force: true });
}

const names = async () => (await json(await fetch(`${s.management}/models`))).models.map((m: { modelName: string }) => m.modelName);
const leftovers = () => fs.readdirSync(work).filter((f) => f.endsWith('.partial'));

beforeAll(async () => {
  s = await startServer({ 'work-dir': work });
  writeModelFolder(path.join(s.store, 'a'), addModel([1]));
});
afterAll(async () => s.close());

test('a registration the snapshot cannot record is refused, and nothing is registered', async () => {
  blockSnapshot();
  const r = await fetch(`${s.management}/models?url=a`, { method: 'POST' });
  expect(r.status).toBe(500);
  expect((await json(r)).type).toBe('SnapshotWriteException');
  expect(await names()).toEqual([]);
  expect((await postJson(`${s.inference}/predictions/a`, { x: [[1]] })).status).toBe(404);
  expect(leftovers()).toEqual([]);
});

test('an unregistration it cannot record is refused, and the model still answers', async () => {
  unblockSnapshot();
  expect((await fetch(`${s.management}/models?url=a`, { method: 'POST' })).status).toBe(200);
  expect(JSON.parse(fs.readFileSync(snapshot, 'utf8')).models.map((m: { name: string }) => m.name)).toEqual(['a']);
  blockSnapshot();
  const r = await fetch(`${s.management}/models/a`, { method: 'DELETE' });
  expect(r.status).toBe(500);
  expect(await names()).toEqual(['a']);
  expect(await json(await postJson(`${s.inference}/predictions/a`, { x: [[1]] }))).toEqual({ y: [[2]] });
  expect(leftovers()).toEqual([]);
  unblockSnapshot();
  expect((await fetch(`${s.management}/models/a`, { method: 'DELETE' })).status).toBe(200);
  expect(JSON.parse(fs.readFileSync(snapshot, 'utf8')).models).toEqual([]);
});
