// The supervisor's own lines: pino's JSON shape and levels, written without pino.
import { jsonLines } from '../../src/cli/supervisor';

test('lines as pino writes them, at or above the configured level only', () => {
  const lines: string[] = [];
  const log = jsonLines('info', (line) => lines.push(line));
  log('info', 'server process started', { childPid: 42, kind: 'first' });
  log('error', 'server process died; restarting it', { code: 1, signal: null });
  expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
  const [started, died] = lines.map((l) => JSON.parse(l));
  expect(started).toEqual({ level: 30, time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), pid: process.pid, childPid: 42, kind: 'first', msg: 'server process started' });
  expect(died).toMatchObject({ level: 50, code: 1, signal: null, msg: 'server process died; restarting it' });

  const quiet: string[] = [];
  jsonLines('error', (line) => quiet.push(line))('info', 'not shown', {});
  jsonLines('silent', (line) => quiet.push(line))('error', 'not shown either', {});
  expect(quiet).toEqual([]);
  // A stdout that refuses the line (EPIPE, EAGAIN) does not stop the supervisor.
  expect(() => jsonLines('info', () => { throw Object.assign(new Error('broken pipe'), { code: 'EPIPE' }); })('error', 'server process died; restarting it', {})).not.toThrow();
});
