// quiver archive: what it packs loads in Quiver, in each format, with the manifest MMS reads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createArchive, ArchiveOptions } from '../../src/cli/archive';
import { OutputExistsError } from '../../src/errors';
import { extractArchive } from '../../src/models/archive';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { json, postJson, startServer, tempDir, TestServer } from '../fixtures/server';

const HANDLER = `const fs = require('node:fs'); const path = require('node:path');
module.exports = { postprocess(outputs, ctx) {
  const note = fs.readFileSync(path.join(ctx.model.dir, 'notes', 'label.txt'), 'utf8').trim();
  return { y: Array.from(outputs.y.data), note };
} };`;

function modelFolder(): string {
  const dir = tempDir('to-archive');
  writeModelFolder(dir, addModel([100]), { handler: 'handler.js' }, { 'handler.js': HANDLER, 'notes/label.txt': 'hundred\n' });
  return dir;
}

function options(overrides: Partial<ArchiveOptions>): ArchiveOptions {
  return { modelPath: modelFolder(), modelName: 'plus100', version: '2.0', extraFiles: ['notes'], format: 'default', exportPath: tempDir('export'), force: false, ...overrides };
}

describe('quiver archive', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer({ workers: '1' });
  });
  afterAll(async () => s.close());

  test.each([
    ['default', '.mar'],
    ['tgz', '.tar.gz'],
    ['no-archive', ''],
  ] as const)('--archive-format %s makes plus100%s, which Quiver serves', async (format, extension) => {
    const target = await createArchive(options({ format, exportPath: s.store }), 'test');
    expect(path.basename(target)).toBe(`plus100${extension}`);
    const registered = await fetch(`${s.management}/models?url=${path.basename(target)}&model_name=m-${format}`, { method: 'POST' });
    expect(registered.status).toBe(200);
    const described = await json(await fetch(`${s.management}/models/m-${format}`));
    expect(described.modelVersion).toBe('2.0');
    expect(await json(await postJson(`${s.inference}/predictions/m-${format}`, { x: [[1]] }))).toEqual({ y: [101], note: 'hundred' });
    fs.rmSync(target, { recursive: true, force: true });
  });

  test('writes the manifest MMS reads', async () => {
    const target = await createArchive(options({}), 'test');
    const out = path.join(tempDir('unpacked'), 'x');
    await extractArchive(target, out, { maxBytes: 1e7 });
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'MAR-INF', 'MANIFEST.json'), 'utf8'));
    expect(manifest).toMatchObject({ runtime: 'node', model: { modelName: 'plus100', modelVersion: '2.0', handler: 'handler.js', serializedFile: 'model.onnx' } });
    expect(manifest.createdOn).toMatch(/^\d\d\/\d\d\/\d{4} \d\d:\d\d:\d\d$/);
    expect(fs.readdirSync(out).sort()).toEqual(['MAR-INF', 'handler.js', 'model-config.json', 'model.onnx', 'notes']);
  });

  test('refuses to overwrite unless forced', async () => {
    const exportPath = tempDir('export');
    await createArchive(options({ exportPath }), 'test');
    await expect(createArchive(options({ exportPath }), 'test')).rejects.toBeInstanceOf(OutputExistsError);
    await expect(createArchive(options({ exportPath, force: true }), 'test')).resolves.toMatch(/plus100\.mar$/);
  });

  test('refuses bad names, missing files and non-JavaScript handlers', async () => {
    await expect(createArchive(options({ modelName: '../evil' }), 'test')).rejects.toThrow(/not valid/);
    await expect(createArchive(options({ extraFiles: ['missing.txt'] }), 'test')).rejects.toThrow(/extra file .* does not exist/);
    const dir = tempDir('py');
    writeModelFolder(dir, addModel([1]));
    fs.writeFileSync(path.join(dir, 'handler.py'), '');
    await expect(createArchive(options({ modelPath: dir, handler: 'handler.py', extraFiles: [] }), 'test')).rejects.toThrow(/not a JavaScript module/);
  });

  test('the command line: prints the archive it wrote; exits 2 with a clear line when it would overwrite', () => {
    const cli = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
    const dir = modelFolder();
    const exportPath = tempDir('export');
    const args = [cli, 'archive', '--model-name', 'plus100', '--model-path', dir, '--extra-files', 'notes', '--archive-format', 'tgz', '--export-path', exportPath];
    const first = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(first.status).toBe(0);
    expect(first.stdout.trim()).toBe(path.join(exportPath, 'plus100.tar.gz'));
    const second = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(second.status).toBe(2);
    expect(second.stderr).toMatch(/quiver: OutputExistsException: .*plus100.tar.gz already exists; use --force/);
  });
});
