import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatConfig, loadConfig, loadConfigWithSources, parseAddress, parseProperties } from '../../src/config/load';
import { InvalidConfigError } from '../../src/errors';
import { defaultMemoryBudget } from '../../src/config/schema';

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
    [{ workers: 'two' }, /workers \(from flag --workers\): expected a whole number/],
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

describe('config.properties', () => {
  function folderWith(text: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-config-'));
    fs.writeFileSync(path.join(dir, 'config.properties'), text);
    return dir;
  }

  test('parses properties: comments, both separators, continued lines', () => {
    const entries = parseProperties('# comment\n! also\ninference_address=127.0.0.1:9000\njob_queue_size: 7\nload_models=a.mar,\\\n  b.mar\n', 'c');
    expect(entries.get('inference_address')).toEqual({ value: '127.0.0.1:9000', line: 3 });
    expect(entries.get('job_queue_size')?.value).toBe('7');
    expect(entries.get('load_models')?.value).toBe('a.mar,b.mar');
  });

  test('MMS key names in the file; environment over file; flags over both; each value says where it came from', () => {
    const dir = folderWith('inference_address=127.0.0.1:9000\nmanagement_address=127.0.0.1:9001\njob_queue_size=7\nworkers=3\ndefault_workers_per_model=2\n');
    const loaded = loadConfigWithSources({ workers: '4' }, { QUIVER_JOB_QUEUE_SIZE: '9' }, dir);
    expect(loaded.config).toMatchObject({ inference_address: '127.0.0.1:9000', job_queue_size: 9, workers: 4, default_workers_per_model: 2 });
    expect(loaded.sources).toMatchObject({
      inference_address: 'file config.properties:1', job_queue_size: 'env QUIVER_JOB_QUEUE_SIZE', workers: 'flag --workers', max_request_size: 'default',
    });
    const printed = formatConfig(loaded);
    expect(printed).toMatch(/^workers\s+= 4\s+# flag --workers$/m);
    expect(printed).toMatch(/^job_queue_size\s+= 9\s+# env QUIVER_JOB_QUEUE_SIZE$/m);
  });

  test("SageMaker's port wins over the file", () => {
    const dir = folderWith('inference_address=127.0.0.1:9000\n');
    const loaded = loadConfigWithSources({}, { SAGEMAKER_BIND_TO_PORT: '8085' }, dir);
    expect(loaded.config.inference_address).toBe('0.0.0.0:8085');
    expect(loaded.sources.inference_address).toBe('env SAGEMAKER_BIND_TO_PORT');
  });

  test.each([
    ['an unknown key', 'netty_threads=4\n', /config.properties:1: unknown key netty_threads/],
    ['an MMS key Quiver does not use', '# MMS\nnetty_client_threads=4\n', /config.properties:2: MMS and TorchServe key netty_client_threads is not used by Quiver: remove it \(.*Netty/],
    ['a TorchServe key Quiver does not use', 'metrics_address=127.0.0.1:8082\n', /TorchServe key metrics_address is not used by Quiver: remove it \(.*\/metrics on the management address/],
    ['a key that only looks foreign', 'constructor=1\n', /config.properties:1: unknown key constructor$/],
    ['an allowed_urls pattern that is not a regular expression', 'allowed_urls=https://ok/.*,https://(bad\n', /allowed_urls .*"https:\/\/\(bad" is not a valid regular expression/],
    ['a wrong type', 'workers=\n', /workers \(from file config.properties:1\): expected a whole number/],
    ['an impossible value', 'job_queue_size=0\n', /job_queue_size .*must be at least 1/],
    ['a bad address', 'management_address=nowhere\n', /management_address .*host:port/],
    ['a line without a value', 'oops\n', /config.properties:1: expected key=value/],
    ['read timeouts Node cannot take', 'header_read_timeout=40\n', /header_read_timeout \(40\) must not be more than request_read_timeout \(30\)/],
  ])('refuses %s with one line naming the key', (_what, text, message) => {
    expect(() => loadConfigWithSources({}, {}, folderWith(text))).toThrow(message);
  });

  test('refuses unknown QUIVER_ environment variables and a missing named file', () => {
    expect(() => loadConfigWithSources({}, { QUIVER_WORKRS: '2' }, os.tmpdir())).toThrow(/unknown environment variable QUIVER_WORKRS/);
    expect(() => loadConfigWithSources({ 'config-file': '/nope/config.properties' }, {}, os.tmpdir())).toThrow(/does not exist/);
  });
});

describe('defaultMemoryBudget', () => {
  const GiB = 2 ** 30;
  const files = (entries: Record<string, string>) => (file: string) => {
    if (!(file in entries)) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
    return entries[file];
  };
  test('70% of the container limit, from cgroup v2 or else cgroup v1; physical memory when there is none', () => {
    expect(defaultMemoryBudget(files({ '/sys/fs/cgroup/memory.max': `${4 * GiB}\n` }), 64 * GiB)).toBe(Math.floor(4 * GiB * 0.7));
    // A cgroup v1 node (memory controller mounted on its own): the container's 4 GiB, not the node's 64.
    expect(defaultMemoryBudget(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${4 * GiB}\n` }), 64 * GiB)).toBe(Math.floor(4 * GiB * 0.7));
    // No limit: v2 says "max", v1 a number near 2^63.
    expect(defaultMemoryBudget(files({ '/sys/fs/cgroup/memory.max': 'max\n' }), 8 * GiB)).toBe(Math.floor(8 * GiB * 0.7));
    expect(defaultMemoryBudget(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' }), 8 * GiB)).toBe(Math.floor(8 * GiB * 0.7));
    expect(defaultMemoryBudget(files({}), 8 * GiB)).toBe(Math.floor(8 * GiB * 0.7));
  });
});
