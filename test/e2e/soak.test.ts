// The short soak CI runs: real models, valid and invalid requests, a worker fault and a server kill.
import { runSoak } from '../../bench/soak';

test('under load, with a worker fault and a server process kill, nothing is lost or wrong', async () => {
  const report = await runSoak({ requests: 200, concurrency: 32 });
  expect(report.problems).toEqual([]);
  expect({ lost: report.lost, wrong: report.wrong, unexpected5xx: report.unexpected5xx }).toEqual({ lost: 0, wrong: 0, unexpected5xx: 0 });
  expect(report.faultAnswers).toBe(1);
  // The kill happened: some requests had to wait for the restarted server.
  expect(report.retried).toBeGreaterThan(0);
}, 180_000);
