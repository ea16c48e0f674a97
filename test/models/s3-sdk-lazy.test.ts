// The S3 SDK (~20 MiB of RSS) is loaded by the first S3 URL, not by a server that has none.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const loadsSdk = (script: string): boolean =>
  execFileSync(process.execPath, ['-e', `${script}; process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('@aws-sdk/client-s3'))))`], {
    cwd: path.join(__dirname, '..', '..', '..'),
    encoding: 'utf8',
  }) === 'true';

test('the server modules do not load the S3 SDK; an S3 store asked for an object does', () => {
  expect(loadsSdk("require('./dist/src/server')")).toBe(false);
  expect(loadsSdk("const { S3ArtifactStore } = require('./dist/src/models/s3-store'); new S3ArtifactStore({ endpoint: 'http://127.0.0.1:9', maxObjects: 1 }).describe('s3://bucket/key').catch(() => undefined)")).toBe(true);
});
