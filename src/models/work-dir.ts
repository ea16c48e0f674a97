// The work dir holds unpacked archives (code that will run), downloads and the snapshot: it must be
// ours alone. A path in a shared /tmp that someone else made first, or that others may write, is refused.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidConfigError } from '../errors';

/** The default: per user (as tmux's /tmp/tmux-UID), so that users of one machine never share it. */
export function defaultWorkDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  return path.join(os.tmpdir(), `quiver-${uid}`);
}

/** Creates the work dir (mode 0700) or checks the one there: a real directory, ours, not writable by others. */
export function prepareWorkDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new InvalidConfigError(`work_dir ${dir} is not a directory (a link or a file is refused)`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new InvalidConfigError(`work_dir ${dir} belongs to uid ${st.uid}, not to this user (${process.getuid()}): choose another work_dir`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new InvalidConfigError(`work_dir ${dir} may be written by others (mode ${(st.mode & 0o777).toString(8)}): chmod go-w it, or choose another work_dir`);
  }
}
