// A mutation fuzzer over the targets in targets.ts: seeded, so a run can be repeated; inputs are the
// seeds changed by bit flips, interesting bytes, inserted, deleted, repeated and spliced runs, and
// truncation. A crash is kept (findings/) with the target's name, so it can become a regression test.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FuzzTarget } from './targets';

export interface FuzzReport {
  target: string;
  runs: number;
  crashes: { input: Buffer; error: string }[];
}

/** xorshift32: the same seed, the same inputs. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x2f, 0x2e, 0x0a, 0x0d, 0x22, 0x5b, 0x7b, 0x2d, 0x39];

export function mutate(input: Buffer, corpus: Buffer[], rnd: () => number): Buffer {
  let out = Buffer.from(input);
  const pick = (n: number) => Math.floor(rnd() * n);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    const at = out.length > 0 ? pick(out.length) : 0;
    switch (pick(8)) {
      case 0:
        if (out.length) out[at] ^= 1 << pick(8);
        break;
      case 1:
        if (out.length) out[at] = INTERESTING[pick(INTERESTING.length)];
        break;
      case 2: {
        const len = 1 + pick(16);
        out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: len }, () => pick(256))), out.subarray(at)]);
        break;
      }
      case 3:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + pick(64)))]);
        break;
      case 4: {
        const len = 1 + pick(Math.max(1, Math.min(256, out.length - at)));
        const piece = out.subarray(at, at + len);
        out = Buffer.concat([out.subarray(0, at), piece, piece, out.subarray(at)]);
        break;
      }
      case 5: {
        const other = corpus[pick(corpus.length)];
        const from = pick(Math.max(1, other.length));
        out = Buffer.concat([out.subarray(0, at), other.subarray(from, from + 1 + pick(128))]);
        break;
      }
      case 6:
        out = out.subarray(0, pick(out.length + 1));
        break;
      case 7:
        // A 32-bit field (a length, a size) set to an edge value.
        if (out.length >= at + 4) out.writeUInt32BE([0, 1, 0x7fffffff, 0xffffffff, out.length][pick(5)] >>> 0, at);
        break;
    }
  }
  return out;
}

export async function fuzz(target: FuzzTarget, seconds: number, seed: number, findings?: string): Promise<FuzzReport> {
  const corpus = await target.seeds();
  const rnd = random(seed);
  const deadline = Date.now() + seconds * 1000;
  const report: FuzzReport = { target: target.name, runs: 0, crashes: [] };
  const seen = new Set<string>();
  for (let i = 0; Date.now() < deadline; i++) {
    const base = corpus[i % corpus.length];
    // The seeds themselves first: they must pass.
    let input = i < corpus.length ? base : mutate(base, corpus, rnd);
    if (target.repair && i >= corpus.length && rnd() < 0.7) input = target.repair(input);
    report.runs++;
    try {
      await target.run(input);
    } catch (err) {
      const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      const key = error.replace(/\d+/g, 'N').slice(0, 120);
      if (seen.has(key)) continue;
      seen.add(key);
      report.crashes.push({ input, error });
      if (findings) {
        fs.mkdirSync(findings, { recursive: true });
        const file = path.join(findings, `${target.name}-${createHash('sha256').update(input).digest('hex').slice(0, 12)}.bin`);
        fs.writeFileSync(file, input);
      }
    }
  }
  return report;
}
