import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidConfigError } from '../../src/errors';
import { defaultWorkDir, prepareWorkDir } from '../../src/models/work-dir';
import { tempDir } from '../fixtures/server';

describe('work dir', () => {
  test('the default is per user, not one fixed path in the shared temp dir', () => {
    expect(defaultWorkDir()).toBe(path.join(os.tmpdir(), `quiver-${process.getuid!()}`));
  });

  test('a missing work dir is created private (0700)', () => {
    const dir = path.join(tempDir('wd'), 'a', 'b');
    prepareWorkDir(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  });

  test('one that others may write, or a link planted in its place, is refused', () => {
    const open = path.join(tempDir('wd'), 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    expect(() => prepareWorkDir(open)).toThrow(InvalidConfigError);
    expect(() => prepareWorkDir(open)).toThrow(/written by others/);
    const link = path.join(tempDir('wd'), 'link');
    fs.symlinkSync(tempDir('target'), link);
    expect(() => prepareWorkDir(link)).toThrow(/not a directory/);
  });

  test('an existing private folder of ours is accepted as it is', () => {
    const dir = tempDir('wd');
    fs.chmodSync(dir, 0o755);
    expect(() => prepareWorkDir(dir)).not.toThrow();
  });
});
