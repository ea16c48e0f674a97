import { chooseRemovals, pickWorker, placeModel } from '../../src/scheduler/placement';

describe('placeModel', () => {
  const workers = [
    { id: 0, models: 2, bytes: 300 },
    { id: 1, models: 1, bytes: 100 },
    { id: 2, models: 3, bytes: 100 },
    { id: 3, models: 0, bytes: 0 },
  ];

  test('places on the least loaded workers, by bytes then model count', () => {
    expect(placeModel(workers, 1)).toEqual([3]);
    expect(placeModel(workers, 3)).toEqual([3, 1, 2]);
  });

  test('never places more copies than asked, nor twice on one worker', () => {
    expect(placeModel(workers, 2, new Set([3]))).toEqual([1, 2]);
    expect(placeModel(workers, 10)).toHaveLength(4);
    expect(placeModel(workers, 0)).toEqual([]);
  });

  test('scale-down gives up the most loaded hosts first', () => {
    expect(chooseRemovals(workers, 2)).toEqual([0, 2]);
  });
});

describe('pickWorker', () => {
  test('chooses the host with the fewest tasks', () => {
    expect(pickWorker([{ id: 4, inFlight: 3 }, { id: 7, inFlight: 1 }, { id: 9, inFlight: 2 }], 0)).toBe(7);
  });

  test('spreads ties round-robin', () => {
    const hosts = [{ id: 0, inFlight: 0 }, { id: 1, inFlight: 0 }, { id: 2, inFlight: 0 }];
    expect([0, 1, 2, 3].map((cursor) => pickWorker(hosts, cursor))).toEqual([0, 1, 2, 0]);
  });

  test('no hosts, no worker', () => {
    expect(pickWorker([], 0)).toBeUndefined();
  });
});
