// npm run fuzz -- --seconds N [--target NAME] [--seed S]: each target for N seconds; crashing inputs go
// to fuzz-findings/, and the run fails when there is any.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from './fuzzer';
import { TARGETS } from './targets';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, target: { type: 'string' }, seed: { type: 'string' } } });
  const seconds = Number(values.seconds ?? 10);
  const seed = Number(values.seed ?? Date.now() % 2 ** 31);
  const targets = values.target ? TARGETS.filter((t) => t.name === values.target) : TARGETS;
  if (targets.length === 0) throw new Error(`no target ${values.target}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  const findings = path.join(process.cwd(), 'fuzz-findings');
  let crashes = 0;
  console.log(`seed ${seed}, ${seconds} s a target`);
  for (const target of targets) {
    const report = await fuzz(target, seconds, seed, findings);
    crashes += report.crashes.length;
    console.log(`${target.name.padEnd(16)} ${String(report.runs).padStart(8)} runs  ${report.crashes.length} crashes`);
    for (const c of report.crashes) console.log(`  ${c.error.split('\n')[0].slice(0, 200)}`);
  }
  console.log(`RESULT fuzz targets=${targets.length} crashes=${crashes} seed=${seed}`);
  process.exit(crashes > 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
