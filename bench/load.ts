// Runs bench/load-client.js (HTTP) or bench/grpc-load-client.js in a child process and returns what it measured.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import type { GrpcLoadJob } from './grpc-load-client';
import type { LoadJob, LoadResult } from './load-client';

export type { LoadJob, LoadResult };

export function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // The job goes through stdin: request bodies can pass the limit on argument size.
    const child = execFile(process.execPath, [...(process.env.LOAD_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.LOAD_PROF] : []), path.join(__dirname, 'load-client.js')], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`load client failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult);
    });
    child.stdin!.end(JSON.stringify(job));
  });
}

export function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

export function runGrpcLoad(job: GrpcLoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [path.join(__dirname, 'grpc-load-client.js')], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`gRPC load client failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as LoadResult);
    });
    child.stdin!.end(JSON.stringify(job));
  });
}
