// Archives unpacked for registrations leave nothing in work_dir/unpacked once no model uses them, and
// what an earlier process left there is cleared at start.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tarGz } from '../fixtures/archives';
import { addModel } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

let s: TestServer;
let unpacked: string;

beforeAll(async () => {
  const workDir = tempDir('work');
  unpacked = path.join(workDir, 'unpacked');
  fs.mkdirSync(path.join(unpacked, 'stale-0123456789abcdef'), { recursive: true });
  fs.writeFileSync(path.join(unpacked, 'stale-0123456789abcdef', 'model.onnx'), addModel([1]));
  s = await startServer({ 'work-dir': workDir });
  fs.writeFileSync(path.join(s.store, 'packed.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([0.5]) }]));
});

afterAll(async () => {
  await s.close();
  fs.rmSync(path.dirname(unpacked), { recursive: true, force: true });
});

const listUnpacked = () => (fs.existsSync(unpacked) ? fs.readdirSync(unpacked) : []);

/** The folder goes right after the unregistration is answered, not before it: wait a little for it. */
async function unpackedSettles(): Promise<string[]> {
  for (let tries = 0; tries < 100 && listUnpacked().length > 0; tries++) await new Promise((r) => setTimeout(r, 20));
  return listUnpacked();
}

test('folders an earlier process unpacked are removed at start', () => {
  expect(listUnpacked()).toEqual([]);
});

test('a .tar.gz registered and unregistered leaves work_dir/unpacked empty', async () => {
  expect((await fetch(`${s.management}/models?url=packed.tar.gz&model_name=half&synchronous=true`, { method: 'POST' })).status).toBe(200);
  expect(await json(await postJson(`${s.inference}/predictions/half`, { x: [[1]] }))).toEqual({ y: [[1.5]] });
  expect(listUnpacked().filter((name) => name.startsWith('packed-'))).toHaveLength(1);
  expect((await fetch(`${s.management}/models/half`, { method: 'DELETE' })).status).toBe(200);
  expect(await unpackedSettles()).toEqual([]);
});
