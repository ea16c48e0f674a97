import * as fs from 'node:fs';
import * as path from 'node:path';
import { extractArchive } from '../../src/models/archive';
import { InvalidModelArchiveError } from '../../src/errors';
import { tarGz, zip } from '../fixtures/archives';
import { tempDir } from '../fixtures/server';

const LIMITS = { maxBytes: 1024 * 1024 };

function setup(name: string, data: Buffer) {
  const root = tempDir('archive');
  const file = path.join(root, name);
  fs.writeFileSync(file, data);
  return { root, file, dest: path.join(root, 'out') };
}

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('extractArchive', () => {
  test('unpacks a .tar.gz with folders', async () => {
    const { file, dest } = setup('m.tar.gz', tarGz([{ name: 'MAR-INF/', type: '5' }, { name: 'MAR-INF/MANIFEST.json', content: '{}' }, { name: 'model.onnx', content: 'abc' }]));
    await extractArchive(file, dest, LIMITS);
    expect(fs.readFileSync(path.join(dest, 'model.onnx'), 'utf8')).toBe('abc');
    expect(fs.readFileSync(path.join(dest, 'MAR-INF/MANIFEST.json'), 'utf8')).toBe('{}');
  });

  test('unpacks a zip (.mar)', async () => {
    const { file, dest } = setup('m.mar', zip([{ name: 'MAR-INF/' }, { name: 'MAR-INF/MANIFEST.json', content: '{"a":1}' }, { name: 'model.onnx', content: 'xyz' }]));
    await extractArchive(file, dest, LIMITS);
    expect(listTree(dest)).toEqual(['MAR-INF', 'MAR-INF/MANIFEST.json', 'model.onnx']);
  });

  const hostileTars: [string, Parameters<typeof tarGz>[0], RegExp][] = [
    ['a ../ entry', [{ name: '../evil.txt', content: 'x' }], /outside its root/],
    ['a nested ../ entry', [{ name: 'a/../../evil.txt', content: 'x' }], /outside its root/],
    ['an absolute entry', [{ name: '/tmp/evil.txt', content: 'x' }], /outside its root/],
    ['a symlink', [{ name: 'link', type: '2', linkTarget: '/etc/passwd' }], /SymbolicLink entry/],
    ['a hard link', [{ name: 'link', type: '1', linkTarget: '/etc/passwd' }], /Link entry/],
    ['more bytes than the limit', [{ name: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024) }], /more than 1048576 bytes/],
  ];

  test.each(hostileTars)('refuses a tar with %s and writes nothing', async (_what, entries, message) => {
    const { root, file, dest } = setup('bad.tar.gz', tarGz([{ name: 'model.onnx', content: 'ok' }, ...entries]));
    await expect(extractArchive(file, dest, LIMITS)).rejects.toThrow(message);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.readdirSync(root)).toEqual(['bad.tar.gz']);
    expect(fs.existsSync(path.join(path.dirname(root), 'evil.txt'))).toBe(false);
  });

  const hostileZips: [string, Parameters<typeof zip>[0], RegExp][] = [
    ['a ../ entry', [{ name: '../evil.txt', content: 'x' }], /outside its root|invalid relative path/],
    ['an absolute entry', [{ name: '/tmp/evil.txt', content: 'x' }], /outside its root|absolute path/],
    ['a symlink', [{ name: 'link', content: '/etc/passwd', mode: 0o120777 }], /link or special file/],
    ['more bytes than the limit', [{ name: 'big.bin', content: Buffer.alloc(2 * 1024 * 1024) }], /more than 1048576 bytes/],
  ];

  test.each(hostileZips)('refuses a zip with %s and writes nothing', async (_what, entries, message) => {
    const { root, file, dest } = setup('bad.mar', zip([{ name: 'model.onnx', content: 'ok' }, ...entries]));
    const result = extractArchive(file, dest, LIMITS);
    await expect(result).rejects.toBeInstanceOf(InvalidModelArchiveError);
    await expect(result).rejects.toThrow(message);
    expect(fs.readdirSync(root)).toEqual(['bad.mar']);
  });

  test('refuses a file that is no archive, and a truncated one', async () => {
    const plain = setup('x.tar.gz', Buffer.from('not an archive at all'));
    await expect(extractArchive(plain.file, plain.dest, LIMITS)).rejects.toThrow(/not a .tar.gz/);
    const whole = tarGz([{ name: 'model.onnx', content: Buffer.alloc(100_000, 7) }]);
    const cut = setup('cut.tar.gz', whole.subarray(0, Math.floor(whole.length / 2)));
    await expect(extractArchive(cut.file, cut.dest, LIMITS)).rejects.toBeInstanceOf(InvalidModelArchiveError);
    expect(fs.readdirSync(cut.root)).toEqual(['cut.tar.gz']);
  });
});
