// The folders archives are unpacked into (under <workDir>/unpacked), counted by the packages that use
// them: the last to go removes its folder. Work on one folder runs a step at a time, so an open that
// comes during a removal unpacks again after it rather than reading a half-deleted folder.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { log } from '../log';

interface UnpackedFolder {
  /** Packages opened, or being opened, from the folder. */
  users: number;
  /** The last step queued on the folder (unpack or removal); it never rejects. */
  tail: Promise<void>;
  /** The unpack queued or running: opens meanwhile share it, and its failure. */
  unpacking?: Promise<void>;
}

const folders = new Map<string, UnpackedFolder>();

export function unpackedRoot(workDir: string): string {
  return path.join(workDir, 'unpacked');
}

/** Runs `step` once the folder's earlier steps have ended; the record goes when nothing uses or awaits it. */
function queue(dest: string, folder: UnpackedFolder, step: () => Promise<void>): Promise<void> {
  const run = folder.tail.then(step);
  const tail = run.then(() => undefined, () => undefined);
  folder.tail = tail;
  void tail.then(() => {
    if (folder.tail === tail && folder.users === 0 && folders.get(dest) === folder) folders.delete(dest);
  });
  return run;
}

/**
 * Takes one use of the folder `dest` for a package, after `unpack` (which leaves it alone when it is
 * there already) has run in its turn. A failed unpack gives the use back.
 */
export async function useUnpacked(dest: string, unpack: () => Promise<void>): Promise<void> {
  const folder = folders.get(dest) ?? { users: 0, tail: Promise.resolve() };
  folders.set(dest, folder);
  folder.users += 1;
  try {
    folder.unpacking ??= queue(dest, folder, async () => {
      try {
        await unpack();
      } finally {
        // Opens from now on queue their own, after whatever comes next (a removal).
        folder.unpacking = undefined;
      }
    });
    await folder.unpacking;
  } catch (err) {
    await releaseUnpacked(dest);
    throw err;
  }
}

/**
 * Gives back one use of `dest`; the last one removes the folder. Resolves once that removal has run (a
 * failure is logged, not thrown: the model is gone either way).
 */
export async function releaseUnpacked(dest: string): Promise<void> {
  const folder = folders.get(dest);
  if (!folder || folder.users === 0) return;
  folder.users -= 1;
  if (folder.users > 0) return;
  await queue(dest, folder, async () => {
    // Opened again while the removal waited for its turn.
    if (folder.users > 0) return;
    await fsp.rm(dest, { recursive: true, force: true }).catch((err: Error) => {
      log.warn('unpacked model folder could not be removed', { folder: dest, error: err.message });
    });
  });
}

/** At start: what an earlier process unpacked is no registration's now. */
export async function clearUnpacked(workDir: string): Promise<void> {
  await fsp.rm(unpackedRoot(workDir), { recursive: true, force: true }).catch((err: Error) => {
    log.warn('unpacked model folders of an earlier run could not be removed', { folder: unpackedRoot(workDir), error: err.message });
  });
}
