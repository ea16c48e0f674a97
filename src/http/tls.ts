// TLS for the APIs whose address starts with https://, from MMS's and TorchServe's keys: PEM files
// (certificate_file, private_key_file) or a PKCS#12 keystore. Checked once at start.
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { QuiverConfig } from '../config/schema';
import { InvalidConfigError } from '../errors';

export type TlsCredentials = Pick<tls.SecureContextOptions, 'cert' | 'key' | 'pfx' | 'passphrase'>;

export function addressUsesTls(address: string): boolean {
  return /^\s*https:\/\//i.test(address);
}

function readKeyFile(file: string, key: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InvalidConfigError(`${key}: ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The credentials every https:// address is served with; undefined when no address asks for TLS. */
export function tlsCredentials(config: QuiverConfig, addresses: readonly { key: string; value: string }[]): TlsCredentials | undefined {
  const secure = addresses.filter((a) => addressUsesTls(a.value));
  const pem = config.certificate_file !== '' || config.private_key_file !== '';
  const keystore = config.keystore !== '';
  if (secure.length === 0) {
    if (pem || keystore) {
      throw new InvalidConfigError(
        `${pem ? 'certificate_file/private_key_file' : 'keystore'} is set but no address starts with https://: write inference_address=https://host:port (and management_address) to serve TLS`,
      );
    }
    return undefined;
  }
  const needs = secure.map((a) => a.key).join(' and ');
  if (pem && keystore) throw new InvalidConfigError('give either certificate_file and private_key_file, or keystore, not both');
  if (keystore) {
    if (config.keystore_type === 'JKS') {
      throw new InvalidConfigError(
        'keystore_type JKS is Java\'s own format: convert it with `keytool -importkeystore -srckeystore KEYSTORE -destkeystore keystore.p12 -deststoretype PKCS12`, or give certificate_file and private_key_file',
      );
    }
    const credentials: TlsCredentials = { pfx: readKeyFile(config.keystore, 'keystore'), passphrase: config.keystore_pass || undefined };
    return checked(credentials, 'keystore');
  }
  if (config.certificate_file === '' || config.private_key_file === '') {
    throw new InvalidConfigError(`${needs} use${secure.length === 1 ? 's' : ''} https:// but certificate_file and private_key_file (or keystore) are not both set`);
  }
  return checked({ cert: readKeyFile(config.certificate_file, 'certificate_file'), key: readKeyFile(config.private_key_file, 'private_key_file') }, 'certificate_file/private_key_file');
}

/** A wrong password, a key that does not match its certificate, or a broken file stops the start. */
function checked(credentials: TlsCredentials, what: string): TlsCredentials {
  try {
    tls.createSecureContext(credentials);
  } catch (err) {
    throw new InvalidConfigError(`${what}: not a usable TLS key and certificate: ${(err as Error).message}`);
  }
  return credentials;
}
