import { fairCores, mainThreadShares, MAX_PACE, ModelCpu, nextPaces, PACE_STEP } from '../../src/scheduler/cpu-share';

const busy = (key: string, usedCores: number, maxCores = 1): ModelCpu => ({ key, usedCores, maxCores, backlogged: true });
const idle = (key: string, usedCores: number): ModelCpu => ({ key, usedCores, maxCores: 1, backlogged: false });

describe('fair shares of the cores', () => {
  test('busy models split what is in use equally', () => {
    const shares = fairCores([busy('det', 0.4), busy('rec', 0.6), busy('cls', 0.8)]);
    for (const key of ['det', 'rec', 'cls']) expect(shares.get(key)).toBeCloseTo(0.6);
  });

  test('a model without a backlog keeps what it uses; the busy ones split the rest by their threads', () => {
    const shares = fairCores([idle('small', 0.1), busy('a', 0.5), busy('b', 1.3, 2)]);
    expect(shares.get('small')).toBeCloseTo(0.1);
    expect(shares.get('a')).toBeCloseTo(0.6);
    expect(shares.get('b')).toBeCloseTo(1.2);
  });

  test('a model on two threads gets two threads\' share (MMS: two worker processes), none more than a core a thread', () => {
    const shares = fairCores([busy('one', 0.5, 1), busy('two', 1.5, 2)]);
    expect(shares.get('one')).toBeCloseTo(2 / 3);
    expect(shares.get('two')).toBeCloseTo(4 / 3);
    const capped = fairCores([busy('one', 1.5, 1), busy('two', 1.5, 2)]);
    expect(capped.get('one')).toBeCloseTo(1);
    expect(capped.get('two')).toBeCloseTo(2);
  });
});

describe('pacing', () => {
  test('a model over its share is paced while a busy one is under it, a step per reading, up to the most', () => {
    let paces = new Map<string, number>();
    const models = [busy('cls', 0.9), busy('det', 0.5), busy('rec', 0.6)];
    paces = nextPaces(models, paces);
    expect(paces.get('cls')).toBeCloseTo(PACE_STEP);
    expect(paces.get('det')).toBe(0);
    expect(paces.get('rec')).toBe(0);
    for (let i = 0; i < 100; i++) paces = nextPaces(models, paces);
    expect(paces.get('cls')).toBeCloseTo(MAX_PACE);
  });

  test('a pace is kept while the model stays over its share and nobody is starved', () => {
    // cls is over (0.7 against 0.667, but within the tolerance nobody is under).
    const models = [busy('cls', 0.72), busy('det', 0.64), busy('rec', 0.64)];
    const paces = nextPaces(models, new Map([['cls', 0.2]]));
    expect(paces.get('cls')).toBeCloseTo(0.2);
  });

  test('pace eases off when the model is back within its share, and when it has no backlog', () => {
    const even = [busy('cls', 0.6), busy('det', 0.6)];
    expect(nextPaces(even, new Map([['cls', 0.2]])).get('cls')).toBeCloseTo(0.2 - PACE_STEP);
    const calm = [idle('cls', 0.9), busy('det', 0.5)];
    expect(nextPaces(calm, new Map([['cls', 0.2]])).get('cls')).toBeCloseTo(0.2 - PACE_STEP);
    expect(nextPaces(calm, new Map([['cls', 0.01]])).get('cls')).toBe(0);
  });
});

describe('the main thread\'s time', () => {
  test('is split over the models by their requests', () => {
    const shares = mainThreadShares(100, new Map([['cls', 300], ['det', 3], ['rec', 0]]));
    expect(shares.get('cls')).toBeCloseTo(100 * 300 / 303);
    expect(shares.get('det')).toBeCloseTo(100 * 3 / 303);
    expect(shares.get('rec')).toBe(0);
  });

  test('with no requests, nobody is charged', () => {
    expect(mainThreadShares(50, new Map([['a', 0]])).get('a')).toBe(0);
  });
});
