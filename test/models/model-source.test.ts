import * as fs from 'node:fs';
import * as path from 'node:path';
import { openModelPackage, releasePackage } from '../../src/models/model-source';
import { ArtifactNotFoundError, BadRequestError, HandlersRefusedError, InvalidModelArchiveError, UnsafePathError } from '../../src/errors';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { tarGz, zip } from '../fixtures/archives';
import { tempDir } from '../fixtures/server';

function options(store: string) {
  return { modelStore: store, workDir: tempDir('work'), maxArchiveBytes: 10 * 1024 * 1024 };
}

const MANIFEST = JSON.stringify({ runtime: 'node', model: { modelName: 'adder', modelVersion: '2.1', handler: 'handler.js' } });
const HANDLER = 'module.exports = { postprocess: () => ({ ok: true }) };';

describe('openModelPackage', () => {
  test('a folder with model.onnx and no config', async () => {
    const store = tempDir('store');
    writeModelFolder(path.join(store, 'plain'), addModel([1, 2]));
    const pkg = await openModelPackage('plain', options(store));
    expect(pkg.name).toBe('plain');
    expect(pkg.version).toBe('1.0');
    expect(pkg.modelPath).toBe(fs.realpathSync(path.join(store, 'plain', 'model.onnx')));
    expect(pkg.config.postprocess).toEqual({ type: 'tensors' });
    expect(pkg.modelBytes).toBeGreaterThan(0);
  });

  test('an MMS archive folder: the manifest gives name, version and handler', async () => {
    const store = tempDir('store');
    writeModelFolder(path.join(store, 'mar-folder'), addModel([1]), undefined, { 'MAR-INF/MANIFEST.json': MANIFEST, 'handler.js': HANDLER });
    const pkg = await openModelPackage('mar-folder', options(store));
    expect(pkg).toMatchObject({ name: 'adder', version: '2.1' });
    expect(pkg.handlerPath).toMatch(/handler\.js$/);
  });

  test.each([
    ['tar.gz', (entries: { name: string; content: string | Uint8Array }[]) => tarGz(entries)],
    ['mar', (entries: { name: string; content: string | Uint8Array }[]) => zip(entries)],
  ])('a .%s archive, unpacked once and reused', async (ext, pack) => {
    const store = tempDir('store');
    const files = [
      { name: 'MAR-INF/MANIFEST.json', content: MANIFEST },
      { name: 'handler.js', content: HANDLER },
      { name: 'model.onnx', content: addModel([3]) },
    ];
    fs.writeFileSync(path.join(store, `adder.${ext}`), pack(files));
    const opts = options(store);
    const first = await openModelPackage(`adder.${ext}`, opts);
    const second = await openModelPackage(`adder.${ext}`, opts);
    expect(first.name).toBe('adder');
    expect(second.dir).toBe(first.dir);
    expect(first.dir.startsWith(opts.workDir)).toBe(true);
  });

  test('concurrent registrations of one archive share one unpack: all succeed, one folder', async () => {
    const store = tempDir('store');
    const files = [{ name: 'model.onnx', content: addModel([3]) }, { name: 'labels.txt', content: 'x\n'.repeat(20000) }];
    fs.writeFileSync(path.join(store, 'shared.tar.gz'), tarGz(files));
    const opts = options(store);
    const pkgs = await Promise.all(Array.from({ length: 8 }, () => openModelPackage('shared.tar.gz', opts)));
    expect(new Set(pkgs.map((p) => p.dir)).size).toBe(1);
    expect(fs.readdirSync(path.join(opts.workDir, 'unpacked'))).toHaveLength(1);
  });

  test('a tar.gz whose files sit in one top folder (as SageMaker model.tar.gz often are)', async () => {
    const store = tempDir('store');
    fs.writeFileSync(path.join(store, 'wrapped.tar.gz'), tarGz([{ name: 'inner/model.onnx', content: addModel([1]) }]));
    const pkg = await openModelPackage('wrapped.tar.gz', options(store));
    expect(pkg.modelPath.endsWith(path.join('inner', 'model.onnx'))).toBe(true);
    expect(pkg.name).toBe('wrapped');
  });

  test('refuses URLs outside the store, through links too', async () => {
    const store = tempDir('store');
    const outside = tempDir('outside');
    writeModelFolder(outside, addModel([1]));
    fs.symlinkSync(outside, path.join(store, 'sneaky'));
    await expect(openModelPackage('../outside', options(store))).rejects.toBeInstanceOf(UnsafePathError);
    await expect(openModelPackage(outside, options(store))).rejects.toBeInstanceOf(UnsafePathError);
    await expect(openModelPackage('sneaky', options(store))).rejects.toBeInstanceOf(UnsafePathError);
  });

  test('a link out of the store is read only when it leads into a link root (ModelMesh\'s PVC mounts)', async () => {
    const store = tempDir('store');
    const pvc = tempDir('pvc_mounts');
    const elsewhere = tempDir('elsewhere');
    writeModelFolder(path.join(pvc, 'claim', 'mnist'), addModel([1]));
    fs.writeFileSync(path.join(pvc, 'claim', 'bare.onnx'), addModel([2]));
    writeModelFolder(elsewhere, addModel([3]));
    // As ModelMesh's puller leaves a PVC model: /models/<id>/<name> links to /pvc_mounts/<claim>/<path>.
    fs.mkdirSync(path.join(store, 'm__isvc-1'));
    fs.symlinkSync(path.join(pvc, 'claim', 'mnist'), path.join(store, 'm__isvc-1', 'mnist'));
    fs.symlinkSync(path.join(pvc, 'claim', 'bare.onnx'), path.join(store, 'm__isvc-1', 'bare.onnx'));
    fs.symlinkSync(elsewhere, path.join(store, 'm__isvc-1', 'other'));
    const withRoots = { ...options(store), linkRoots: [pvc] };
    await expect(openModelPackage('m__isvc-1/mnist', options(store))).rejects.toBeInstanceOf(UnsafePathError);
    const folder = await openModelPackage('m__isvc-1/mnist', withRoots);
    expect(fs.realpathSync(folder.modelPath)).toBe(fs.realpathSync(path.join(pvc, 'claim', 'mnist', 'model.onnx')));
    expect(fs.realpathSync((await openModelPackage('m__isvc-1/bare.onnx', withRoots)).modelPath)).toBe(fs.realpathSync(path.join(pvc, 'claim', 'bare.onnx')));
    await expect(openModelPackage('m__isvc-1/other', withRoots)).rejects.toBeInstanceOf(UnsafePathError);
    // A link root does not widen what a URL may name: paths are still resolved in the store.
    await expect(openModelPackage(path.join(pvc, 'claim', 'mnist'), withRoots)).rejects.toBeInstanceOf(UnsafePathError);
  });

  test('refuses a model file that links outside its package', async () => {
    const store = tempDir('store');
    const outside = tempDir('outside');
    fs.writeFileSync(path.join(outside, 'model.onnx'), addModel([1]));
    fs.mkdirSync(path.join(store, 'linked'));
    fs.symlinkSync(path.join(outside, 'model.onnx'), path.join(store, 'linked', 'model.onnx'));
    await expect(openModelPackage('linked', options(store))).rejects.toBeInstanceOf(UnsafePathError);
  });

  test('clear errors for missing artifacts, remote URLs and bad packages', async () => {
    const store = tempDir('store');
    await expect(openModelPackage('nope', options(store))).rejects.toBeInstanceOf(ArtifactNotFoundError);
    await expect(openModelPackage('https://example.com/m.mar', options(store))).rejects.toBeInstanceOf(BadRequestError);
    fs.mkdirSync(path.join(store, 'empty'));
    await expect(openModelPackage('empty', options(store))).rejects.toThrow(/model file "model.onnx" is missing/);
    writeModelFolder(path.join(store, 'badcfg'), addModel([1]), { image: { resize: 'sideways' } });
    await expect(openModelPackage('badcfg', options(store))).rejects.toThrow(/image.resize/);
    writeModelFolder(path.join(store, 'pyhandler'), addModel([1]), { handler: 'service:handle' });
    await expect(openModelPackage('pyhandler', options(store))).rejects.toThrow(/not a JavaScript module/);
    writeModelFolder(path.join(store, 'badjson'), addModel([1]), undefined, { 'model-config.json': '{nope' });
    await expect(openModelPackage('badjson', options(store))).rejects.toBeInstanceOf(InvalidModelArchiveError);
  });
});

describe('unpacked folders', () => {
  const unpacked = (workDir: string) => fs.readdirSync(path.join(workDir, 'unpacked'));

  test('are shared by the packages of one archive and removed when the last is released', async () => {
    const store = tempDir('store');
    fs.writeFileSync(path.join(store, 'adder.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([3]) }]));
    const opts = options(store);
    const first = await openModelPackage('adder.tar.gz', opts);
    const second = await openModelPackage('adder.tar.gz', opts);
    expect(second.unpackedDir).toBe(first.unpackedDir);
    await releasePackage(first, opts);
    expect(fs.existsSync(second.modelPath)).toBe(true);
    await releasePackage(second, opts);
    expect(unpacked(opts.workDir)).toEqual([]);
  });

  test('an open during the removal gets a whole folder, unpacked again after it', async () => {
    const store = tempDir('store');
    // Many files, so that the removal takes a while.
    const files = Array.from({ length: 400 }, (_, i) => ({ name: `extra/f${i}.txt`, content: 'x'.repeat(1000) }));
    fs.writeFileSync(path.join(store, 'big.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([3]) }, ...files]));
    const opts = options(store);
    const first = await openModelPackage('big.tar.gz', opts);
    const removal = releasePackage(first, opts);
    const again = await openModelPackage('big.tar.gz', opts);
    await removal;
    expect(again.unpackedDir).toBe(first.unpackedDir);
    expect(fs.readFileSync(again.modelPath).equals(Buffer.from(addModel([3])))).toBe(true);
    expect(fs.readdirSync(path.join(again.dir, 'extra'))).toHaveLength(400);
    await releasePackage(again, opts);
    expect(unpacked(opts.workDir)).toEqual([]);
  });

  test('a package refused after its unpack leaves no folder behind', async () => {
    const store = tempDir('store');
    fs.writeFileSync(path.join(store, 'badcfg.tar.gz'), tarGz([{ name: 'model.onnx', content: addModel([1]) }, { name: 'model-config.json', content: '{nope' }]));
    fs.writeFileSync(path.join(store, 'handler.tar.gz'), tarGz([
      { name: 'MAR-INF/MANIFEST.json', content: MANIFEST },
      { name: 'handler.js', content: HANDLER },
      { name: 'model.onnx', content: addModel([1]) },
    ]));
    const opts = { ...options(store), allowHandlers: false };
    await expect(openModelPackage('badcfg.tar.gz', opts)).rejects.toBeInstanceOf(InvalidModelArchiveError);
    await expect(openModelPackage('handler.tar.gz', opts)).rejects.toBeInstanceOf(HandlersRefusedError);
    expect(unpacked(opts.workDir)).toEqual([]);
  });
});
