// What a model costs in memory: measured at each load and remembered to predict the next one.

/**
 * Before a model's first load: its session's memory per byte of ONNX file. Measured here (RSS growth of
 * the load, on a worker that already held a model): PP-OCR detector 15.6 MB for a 4.7 MB file (3.3×),
 * recogniser 22.3 MB for 10.8 MB (2.1×).
 */
const PREDICTED_BYTES_PER_FILE_BYTE = 2.5;

/**
 * Files below this teach no cost per byte: a session's own fixed cost (hundreds of KB) over a file of a
 * few hundred bytes gave a ratio of ~650, and a 4 MiB model's first load was then predicted at 2.6 GB
 * and refused as larger than the whole budget (bench:churn, after its tiny model had loaded).
 */
export const MIN_RATIO_FILE_BYTES = 1 << 20;

export interface MeasuredLoad {
  /** What one copy holds once loaded. */
  copyBytes: number;
  /** The load's peak above where it started; undefined when it could not be read. */
  peakBytes?: number;
}

export class LoadCostModel {
  private readonly copyBytes = new Map<string, number>();
  private readonly perFileByte = new Map<string, number>();
  private readonly extraBytes = new Map<string, number>();
  private readonly firstRunBytes = new Map<string, number>();

  /**
   * One copy's cost: measured when this file was loaded (and run) before, else its size times the median cost
   * per file byte of the models of 1 MiB or more measured so far (PREDICTED_BYTES_PER_FILE_BYTE before the first).
   */
  predictCopy(modelPath: string, fileBytes: number): number {
    const measured = this.copyBytes.get(modelPath);
    if (measured !== undefined) return measured + (this.firstRunBytes.get(modelPath) ?? 0);
    const ratios = [...this.perFileByte.values()].sort((a, b) => a - b);
    const ratio = ratios.length ? ratios[Math.floor(ratios.length / 2)] : PREDICTED_BYTES_PER_FILE_BYTE;
    return Math.round(fileBytes * Math.max(1, ratio));
  }

  /**
   * What a load holds, for a moment, above the copy it leaves: onnxruntime keeps the parsed file while
   * it builds the session (a 57 MB MatMul model peaked at +120 MB and settled at +59 MB here). Measured
   * after the first load; the file size before it.
   */
  predictLoadExtra(modelPath: string, fileBytes: number): number {
    return this.extraBytes.get(modelPath) ?? fileBytes;
  }

  /**
   * What a copy's first run kept above its load (onnxruntime's arena), added to its next prediction.
   * The largest seen is kept: a later run can reuse memory an earlier copy freed and show less growth.
   */
  recordFirstRun(modelPath: string, bytes: number): void {
    this.firstRunBytes.set(modelPath, Math.max(bytes, this.firstRunBytes.get(modelPath) ?? 0));
  }

  /** What one copy and its first run measured at most so far; undefined before its first load. */
  known(modelPath: string): { copyBytes: number; firstRunBytes: number } | undefined {
    const copyBytes = this.copyBytes.get(modelPath);
    return copyBytes === undefined ? undefined : { copyBytes, firstRunBytes: this.firstRunBytes.get(modelPath) ?? 0 };
  }

  /** What was measured for this file, as a snapshot keeps it; undefined before its first load. */
  measured(modelPath: string): (MeasuredLoad & { firstRunBytes?: number }) | undefined {
    const copyBytes = this.copyBytes.get(modelPath);
    if (copyBytes === undefined) return undefined;
    const extra = this.extraBytes.get(modelPath);
    return { copyBytes, peakBytes: extra === undefined ? undefined : copyBytes + extra, firstRunBytes: this.firstRunBytes.get(modelPath) };
  }

  /** Takes what an earlier process measured (the snapshot), unless this one has measured the file itself. */
  restore(modelPath: string, fileBytes: number, load: MeasuredLoad & { firstRunBytes?: number }): void {
    if (this.copyBytes.has(modelPath)) return;
    this.record(modelPath, fileBytes, load);
    if (load.firstRunBytes) this.recordFirstRun(modelPath, load.firstRunBytes);
  }

  /**
   * The largest measurement is kept: a reload grows RSS less than the copy holds when it reuses memory
   * that an unloaded copy gave back to the allocator but not to the OS, and a budget fed that smaller
   * figure would admit more than fits.
   */
  record(modelPath: string, fileBytes: number, load: MeasuredLoad): void {
    const copyBytes = Math.max(load.copyBytes, this.copyBytes.get(modelPath) ?? 0);
    this.copyBytes.set(modelPath, copyBytes);
    if (fileBytes >= MIN_RATIO_FILE_BYTES) this.perFileByte.set(modelPath, copyBytes / fileBytes);
    if (load.peakBytes !== undefined) this.extraBytes.set(modelPath, Math.max(0, load.peakBytes - load.copyBytes, this.extraBytes.get(modelPath) ?? 0));
  }
}
