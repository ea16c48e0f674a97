// The server's name and version, as protocol metadata reports them (from package.json).
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SERVER_NAME = 'quiver';
export const SERVER_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
