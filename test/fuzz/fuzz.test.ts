// A short fuzz of every parser that sees outside bytes, with a fixed seed (npm run fuzz runs longer
// with fresh seeds). Crashes found there become cases here.
import { crc32 } from 'node:zlib';
import { fuzz, mutate, random } from './fuzzer';
import { TARGETS, repairPngCrcs } from './targets';

describe('fuzzing', () => {
  test.each(TARGETS.map((t) => [t.name, t] as const))('%s: no crash in a short run', async (_name, target) => {
    const report = await fuzz(target, target.name === 'archive' || target.name === 'image-pipeline' ? 2 : 1, 12345);
    expect(report.runs).toBeGreaterThan(target.name === 'archive' ? 20 : 200);
    expect(report.crashes.map((c) => c.error)).toEqual([]);
  });

  // Inputs npm run fuzz found crashing a target, each fixed since.
  test.each([['image-pipeline', Buffer.alloc(0), 'sharp threw a plain Error for an empty buffer']])('regression: %s, %#', async (name, input) => {
    const target = TARGETS.find((t) => t.name === name)!;
    await expect(Promise.resolve().then(() => target.run(input))).resolves.toBeUndefined();
  });

  test('the fuzzer finds a planted bug, so a clean run means something', async () => {
    const planted = {
      name: 'planted',
      seeds: async () => [Buffer.from('{"ok": [1, 2, 3]}')],
      run: (input: Buffer) => {
        if (input.includes(0xff)) throw new Error('planted bug');
      },
    };
    const report = await fuzz(planted, 1, 7);
    expect(report.crashes.map((c) => c.error)).toEqual(['Error: planted bug']);
  });

  test('mutations are repeatable from their seed, and PNG repair fixes chunk CRCs', () => {
    const seed = Buffer.from('abcdefghijklmnop');
    expect(mutate(seed, [seed], random(3)).equals(mutate(seed, [seed], random(3)))).toBe(true);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from([0, 0, 0, 1]), Buffer.from('tEXtx'), Buffer.alloc(4)]);
    const repaired = repairPngCrcs(png);
    expect(repaired.readUInt32BE(repaired.length - 4)).toBe(crc32(Buffer.from('tEXtx')) >>> 0);
  });
});
