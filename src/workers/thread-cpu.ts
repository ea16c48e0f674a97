// CPU time of single threads of this process, from /proc (Linux); Node 20 has no per-thread CPU clock.
import * as fs from 'node:fs';

/** /proc's clock ticks (USER_HZ), 100 on every Linux that Node runs on. */
const TICK_MS = 10;

/** The calling thread's kernel thread id; undefined off Linux. */
export function currentThreadId(): number | undefined {
  try {
    const tid = Number(/\/task\/(\d+)$/.exec(fs.readlinkSync('/proc/thread-self'))?.[1]);
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** User and system time a thread of this process has used, in ms (10 ms steps); undefined when it is gone. */
export function threadCpuMs(tid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    // Fields after the command name, which may hold spaces: state is 3rd, utime 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}
