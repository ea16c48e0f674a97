// Triton's logging extension mapped onto one log level, without HTTP.
import { applyLogSettings, logSettingsOf } from '../../src/oip/log-settings';

const at = (level: 'debug' | 'info' | 'warn' | 'error' | 'silent', verbose = level === 'debug' ? 1 : 0) => ({ level, verbose });

test('a level reads as Triton\'s settings', () => {
  expect(logSettingsOf(at('info'))).toEqual({ log_file: '', log_info: true, log_warnings: true, log_errors: true, log_verbose_level: 0, log_format: 'default' });
  expect(logSettingsOf(at('warn'))).toMatchObject({ log_info: false, log_warnings: true, log_errors: true });
  expect(logSettingsOf(at('debug', 3)).log_verbose_level).toBe(3);
  expect(logSettingsOf(at('silent'))).toMatchObject({ log_info: false, log_warnings: false, log_errors: false, log_verbose_level: 0 });
});

test('a kind turned on turns on the coarser ones; one turned off, the finer ones', () => {
  expect(applyLogSettings(at('info'), { log_verbose_level: 2 })).toEqual({ level: 'debug', verbose: 2 });
  // Triton's own example, from a server that logs nothing.
  expect(applyLogSettings(at('silent'), { log_verbose_level: 1 })).toEqual({ level: 'debug', verbose: 1 });
  expect(applyLogSettings(at('debug'), { log_verbose_level: 0 })).toEqual({ level: 'info', verbose: 0 });
  expect(applyLogSettings(at('debug'), { log_info: false })).toEqual({ level: 'warn', verbose: 0 });
  expect(applyLogSettings(at('info'), { log_errors: false })).toEqual({ level: 'silent', verbose: 0 });
  expect(applyLogSettings(at('silent'), { log_warnings: true })).toEqual({ level: 'warn', verbose: 0 });
  expect(applyLogSettings(at('warn'), {})).toEqual({ level: 'warn', verbose: 0 });
  expect(applyLogSettings(at('error'), { log_info: true, log_verbose_level: 0, log_file: '', log_format: 'default' })).toEqual({ level: 'info', verbose: 0 });
});

test('an update that needs the kinds apart, and what is not a setting, is refused', () => {
  expect(() => applyLogSettings(at('info'), { log_info: true, log_warnings: false })).toThrow(/log_info on needs log_warnings on/);
  expect(() => applyLogSettings(at('info'), { log_verbose_level: 1, log_errors: false })).toThrow(/nest/);
  expect(() => applyLogSettings(at('info'), { log_file: '/tmp/x.log' })).toThrow(/standard output/);
  expect(() => applyLogSettings(at('info'), { log_format: 'ISO8601' })).toThrow(/log_format/);
  expect(() => applyLogSettings(at('info'), { log_info: 'yes' })).toThrow(/true or false/);
  expect(() => applyLogSettings(at('info'), { log_verbose_level: -1 })).toThrow(/whole number/);
  expect(() => applyLogSettings(at('info'), { verbose: 1 })).toThrow(/unknown log setting "verbose"/);
  expect(() => applyLogSettings(at('info'), [1])).toThrow(/JSON object/);
});
