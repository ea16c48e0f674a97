// TLS from MMS's and TorchServe's keys: https:// addresses served with PEM files or a PKCS#12 keystore,
// checked with the real curl; misconfigurations stop the start with a line naming the key.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { InvalidConfigError } from '../../src/errors';
import { tlsCredentials } from '../../src/http/tls';
import { QuiverServer } from '../../src/server';
import { curl, curlJson } from '../fixtures/curl';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { startServer, tempDir, TestServer } from '../fixtures/server';

const dir = tempDir('tls');
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
const keystore = path.join(dir, 'keystore.p12');

beforeAll(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  execFileSync('openssl', ['pkcs12', '-export', '-in', cert, '-inkey', key, '-out', keystore, '-passout', 'pass:changeit'], { stdio: 'ignore' });
});

const https = { 'inference-address': 'https://127.0.0.1:0', 'management-address': 'https://127.0.0.1:0' };

describe('TLS on the inference and management APIs', () => {
  let s: TestServer;
  afterEach(async () => s?.close());

  test('PEM files: both ports speak TLS only, register and predict over it', async () => {
    s = await startServer({ ...https, 'certificate-file': cert, 'private-key-file': key });
    expect(s.inference).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await curlJson(['--cacert', cert, `${s.inference}/ping`])).toEqual({ status: 200, json: { status: 'Healthy' } });
    writeModelFolder(path.join(s.store, 'adder'), addModel([1, 2]));
    const registered = await curlJson(['--cacert', cert, '-X', 'POST', `${s.management}/models?url=adder&initial_workers=1&synchronous=true`]);
    expect(registered.status).toBe(200);
    // Two requests on one kept-alive connection.
    const one = ['--cacert', cert, '-d', '{"x":[[1,1]]}', '-w', ' connects=%{num_connects};', `${s.inference}/predictions/adder`];
    // Not execFileSync: the server answers from this same event loop.
    const { stdout: twice } = await promisify(execFile)('curl', ['-sS', ...one, '--next', ...one], { encoding: 'utf8' });
    expect(twice).toBe('{"y":[[2,3]]} connects=1;{"y":[[2,3]]} connects=0;');
    // Plain HTTP to a TLS port gets no answer.
    const plain = s.inference.replace('https://', 'http://');
    await expect(curl([`${plain}/ping`])).rejects.toThrow();
  });

  test('a PKCS#12 keystore with its password', async () => {
    s = await startServer({ ...https, keystore, 'keystore-pass': 'changeit' });
    expect((await curlJson(['--cacert', cert, `${s.management}/models`])).status).toBe(200);
  });
});

describe('TLS misconfigurations stop the start', () => {
  const addresses = (config: ReturnType<typeof loadConfig>) => [
    { key: 'inference_address', value: config.inference_address },
    { key: 'management_address', value: config.management_address },
  ];
  const check = (flags: Record<string, string>) => {
    const config = loadConfig(flags, {});
    return () => tlsCredentials(config, addresses(config));
  };

  test.each([
    ['https:// without credentials', { ...https }, /use https:\/\/ but certificate_file and private_key_file \(or keystore\) are not both set/],
    ['credentials without https://', { 'certificate-file': cert, 'private-key-file': key }, /no address starts with https:\/\//],
    ['a wrong keystore password', { ...https, keystore, 'keystore-pass': 'wrong' }, /keystore: not a usable TLS key and certificate/],
    ['a JKS keystore', { ...https, keystore, 'keystore-type': 'JKS' }, /keystore_type JKS is Java's own format: convert it with `keytool -importkeystore/],
    ['a key that is not there', { ...https, 'certificate-file': cert, 'private-key-file': path.join(dir, 'nope.pem') }, /private_key_file: .*nope.pem cannot be read: ENOENT/],
    ['a key that does not match the certificate', { ...https, 'certificate-file': cert, 'private-key-file': cert }, /not a usable TLS key and certificate/],
  ])('%s', (_what, flags, message) => {
    expect(check(flags)).toThrow(InvalidConfigError);
    expect(check(flags)).toThrow(message);
  });

  test('the server refuses to start rather than serve plain HTTP', async () => {
    const config = loadConfig({ ...https, 'model-store': tempDir('tls-store'), 'work-dir': tempDir('tls-work'), 'log-level': 'silent', workers: '1' }, {});
    await expect(QuiverServer.start(config)).rejects.toThrow(/certificate_file and private_key_file/);
  });

  test('config --print never shows the keystore password', () => {
    const printed = execFileSync(process.execPath, [path.join(__dirname, '..', '..', 'src', 'cli', 'main.js'), 'config', '--print', '--keystore-pass', 'hunter2'], { encoding: 'utf8' });
    expect(printed).toMatch(/^keystore_pass\s+= \(set\)\s+# flag --keystore-pass$/m);
    expect(printed).not.toContain('hunter2');
  });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
