// The registry on disk, as TorchServe's snapshots: what was registered and how, so that a server the
// supervisor restarts after a crash comes back with the same models.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { log } from '../log';

const snapshotSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  models: z.array(
    z.object({
      name: z.string(),
      url: z.string(),
      workers: z.number().int().min(0),
      batchSize: z.number().int().min(1),
      maxBatchDelayMs: z.number().int().min(0),
      responseTimeoutS: z.number().int().min(1),
      /** Present when max_worker is above min_worker (workers). */
      maxWorkers: z.number().int().min(0).optional(),
      /** Absent in snapshots written before versions: the package's own. */
      modelVersion: z.string().optional(),
      isDefault: z.boolean().optional(),
      /** The device the registration asked for (absent: the model config's, or default_device). */
      device: z.enum(['auto', 'cpu', 'cuda']).optional(),
      /** What one copy measured before the crash, so the restore predicts with it rather than guesses. */
      measured: z
        .object({
          copyBytes: z.number().int().min(0), peakBytes: z.number().int().min(0).optional(), firstRunBytes: z.number().int().min(0).optional(),
          /** A copy on a GPU: the device memory it measured. */
          gpu: z.object({ copyBytes: z.number().int().min(0), firstRunBytes: z.number().int().min(0).optional() }).optional(),
        })
        .optional(),
    }),
  ),
});

export type RegistrySnapshot = z.infer<typeof snapshotSchema>;
export type SnapshotModel = RegistrySnapshot['models'][number];

export function snapshotFile(workDir: string): string {
  return path.join(workDir, 'snapshot.json');
}

/**
 * Written to a temporary file, synced, and renamed over the old one (then the folder synced), so a
 * crash or a full disk never leaves half a snapshot; a failure throws and leaves no temporary file.
 */
export function writeSnapshot(file: string, models: SnapshotModel[]): void {
  const snapshot: RegistrySnapshot = { version: 1, savedAt: new Date().toISOString(), models };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  try {
    const fd = fs.openSync(partial, 'w', 0o600);
    try {
      fs.writeFileSync(fd, JSON.stringify(snapshot, null, 2));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(partial, file);
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  }
  try {
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    // Some filesystems cannot sync a folder; the rename itself is done.
  }
}

export function readSnapshot(file: string): SnapshotModel[] {
  if (!fs.existsSync(file)) return [];
  try {
    return snapshotSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8'))).models;
  } catch (err) {
    log.error('snapshot is unreadable; starting without it', { file, error: (err as Error).message });
    return [];
  }
}
