import { loadConfig, parseAddress } from '../../src/config/load';
import { InvalidConfigError } from '../../src/errors';

describe('loadConfig', () => {
  test('defaults serve MMS on loopback', () => {
    const config = loadConfig({}, {});
    expect(config.mode).toBe('mms');
    expect(config.inference_address).toBe('127.0.0.1:8080');
    expect(config.management_address).toBe('127.0.0.1:8081');
    expect(config.default_workers_per_model).toBe(1);
  });

  test('flags win over environment variables, which win over defaults', () => {
    const config = loadConfig({ workers: '3' }, { QUIVER_WORKERS: '5', QUIVER_JOB_QUEUE_SIZE: '7' });
    expect(config.workers).toBe(3);
    expect(config.job_queue_size).toBe(7);
  });

  test('SageMaker conventions: port from SAGEMAKER_BIND_TO_PORT, all interfaces, /opt/ml/models', () => {
    const config = loadConfig({}, { SAGEMAKER_BIND_TO_PORT: '9090' });
    expect(config.mode).toBe('sagemaker');
    expect(config.inference_address).toBe('0.0.0.0:9090');
    expect(config.model_store).toBe('/opt/ml/models');
  });

  test('repeatable and comma-separated model lists', () => {
    expect(loadConfig({ models: ['a=x.tar.gz', 'b=y,c=z'] }, {}).load_models).toEqual(['a=x.tar.gz', 'b=y', 'c=z']);
  });

  test.each([
    [{ workers: 'two' }, /workers \(from --workers\): expected a whole number/],
    [{ workers: '0' }, /workers .*at least 1/],
    [{ mode: 'triton' }, /mode .*"mms" or "sagemaker"/],
    [{ 'inference-address': 'localhost' }, /inference_address .*host:port/],
    [{ bogus: '1' }, /unknown option --bogus/],
  ])('refuses %p with a line naming the key', (flags, message) => {
    expect(() => loadConfig(flags, {})).toThrow(InvalidConfigError);
    expect(() => loadConfig(flags, {})).toThrow(message);
  });

  test('parseAddress reads IPv4, IPv6 and URLs', () => {
    expect(parseAddress('0.0.0.0:8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseAddress('[::1]:81')).toEqual({ host: '::1', port: 81 });
    expect(parseAddress('http://127.0.0.1:8081')).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(() => parseAddress('127.0.0.1:70000')).toThrow(/out of range/);
  });
});
