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
    }),
  ),
});

export type RegistrySnapshot = z.infer<typeof snapshotSchema>;
export type SnapshotModel = RegistrySnapshot['models'][number];

export function snapshotFile(workDir: string): string {
  return path.join(workDir, 'snapshot.json');
}

/** Written to a temporary file and renamed, so a crash mid-write never leaves half a snapshot. */
export function writeSnapshot(file: string, models: SnapshotModel[]): void {
  const snapshot: RegistrySnapshot = { version: 1, savedAt: new Date().toISOString(), models };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.partial`;
  fs.writeFileSync(partial, JSON.stringify(snapshot, null, 2));
  fs.renameSync(partial, file);
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
