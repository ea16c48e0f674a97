#!/usr/bin/env node
// `quiver serve [options]`: starts the server. SageMaker starts the container with the argument `serve`.
import { parseArgs } from 'node:util';
import { loadConfig, RawFlags } from '../config/load';
import { CONFIG_SCHEMA } from '../config/schema';
import { QuiverError } from '../errors';
import { log } from '../log';
import { QuiverServer } from '../server';

function usage(): string {
  const lines = CONFIG_SCHEMA.map((e) => `  --${e.flag.padEnd(22)} ${e.env.padEnd(28)} ${e.doc}`);
  return ['Usage: quiver serve [options]', '', 'Options (flag, environment variable, meaning):', ...lines, '  --help'].join('\n');
}

function parseFlags(args: string[]): RawFlags {
  const options = Object.fromEntries(
    CONFIG_SCHEMA.map((e) => [e.flag, { type: 'string' as const, multiple: e.type === 'list' }]),
  );
  try {
    const { values } = parseArgs({ args, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false });
    return values as RawFlags;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n\n${usage()}`);
  }
}

async function serve(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  if (flags.help) {
    console.log(usage());
    return;
  }
  delete flags.help;
  const server = await QuiverServer.start(loadConfig(flags));
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info('shutting down', { signal });
    server.close().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case undefined:
    case 'help':
    case '--help':
      console.log(usage());
      return;
    default:
      throw new Error(`unknown command "${command}"\n\n${usage()}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof QuiverError ? `${err.type}: ${err.message}` : (err as Error).message;
  console.error(`quiver: ${message}`);
  process.exit(2);
});
