// The process's resident memory and its high-water mark, from /proc (Linux). Loads are serialized, so
// the high-water mark across one load is that load's peak.
import * as fs from 'node:fs';

export function residentBytes(): number {
  return process.memoryUsage.rss();
}

/** Resets VmHWM to the current RSS; false where the kernel does not allow it (then no peak is known). */
export function resetPeakResident(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export function peakResidentBytes(): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}
