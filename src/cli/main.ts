#!/usr/bin/env node
// The `quiver` command: `serve` (SageMaker starts the container with that argument), `config --print`,
// and `archive`.
import { SERVER_VERSION } from '../version';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CONFIG_FILE_ENV, CONFIG_FILE_FLAG, formatConfig, loadConfigWithSources, RawFlags } from '../config/load';
import { CONFIG_SCHEMA } from '../config/schema';
import { InvalidConfigError, QuiverError } from '../errors';
import type { ArchiveFormat } from './archive';
import { CONFIG_EXIT_CODE, SUPERVISED_ENV, SupervisorLog, jsonLines, supervise } from './supervisor';

const VERSION = SERVER_VERSION;

function serveUsage(): string {
  const lines = CONFIG_SCHEMA.map((e) => `  --${e.flag.padEnd(22)} ${e.env.padEnd(28)} ${e.doc}`);
  return [
    'Usage: quiver serve [options]',
    '',
    `Options (flag, environment variable, meaning); also read from config.properties or --${CONFIG_FILE_FLAG} (${CONFIG_FILE_ENV}):`,
    ...lines,
  ].join('\n');
}

const ARCHIVE_USAGE = `Usage: quiver archive --model-name NAME [--model-path DIR] [--version 1.0] [--serialized-file model.onnx]
                      [--handler handler.js] [--extra-files a,b] [--archive-format default|tgz|no-archive]
                      [--export-path DIR] [--force]
Packs DIR (model.onnx, model-config.json, handler, extra files) into NAME.mar (default), NAME.tar.gz (tgz)
or a folder NAME (no-archive), with MAR-INF/MANIFEST.json as MMS reads it.`;

function configFlags(args: string[], usage: string, extra: Record<string, { type: 'boolean' }> = {}): RawFlags {
  const options = Object.fromEntries(CONFIG_SCHEMA.map((e) => [e.flag, { type: 'string' as const, multiple: e.type === 'list' || e.type === 'regex-list' }]));
  try {
    const { values } = parseArgs({
      args, options: { ...options, [CONFIG_FILE_FLAG]: { type: 'string' }, help: { type: 'boolean' }, ...extra }, strict: true, allowPositionals: false,
    });
    return values as RawFlags;
  } catch (err) {
    throw new InvalidConfigError(`${(err as Error).message}\n\n${usage}`);
  }
}

async function serve(args: string[]): Promise<void> {
  const flags = configFlags(args, serveUsage(), { 'no-supervisor': { type: 'boolean' }, 'disable-token-auth': { type: 'boolean' }, 'no-handlers': { type: 'boolean' } });
  if (flags.help) return void console.log(serveUsage());
  const noSupervisor = flags['no-supervisor'] === true;
  // TorchServe's switch: the same as --token-auth off.
  if (flags['disable-token-auth'] === true) flags['token-auth'] = 'off';
  if (flags['no-handlers'] === true) flags['allow-handlers'] = 'false';
  delete flags.help;
  delete flags['no-supervisor'];
  delete flags['disable-token-auth'];
  delete flags['no-handlers'];
  const { config } = loadConfigWithSources(flags);
  const supervised = process.env[SUPERVISED_ENV];
  if (!supervised && !noSupervisor) {
    // The parent only watches: the configuration is checked here so a bad one fails once, not in a loop.
    // pino is loaded here only for the terminal's format: the parent of `npm start` stays small.
    let supervisorLog: SupervisorLog = jsonLines(config.log_level);
    if (config.log_format !== 'json') {
      const logging = await import('../log');
      logging.configureLogging(config.log_level, config.log_format);
      supervisorLog = (level, msg, fields) => logging.log[level](msg, fields);
    }
    const code = await supervise({ script: __filename, args: ['serve', ...args], shutdownTimeoutMs: config.shutdown_timeout * 1000, log: supervisorLog });
    process.exit(code);
  }
  const { flushLog, log } = await import('../log');
  // Every worker thread's onnxruntime runs and image decodes go through libuv's one process-wide pool:
  // at its default of 4 threads, a fifth busy worker would wait for a pool thread, not for a core.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(1024, Math.max(4, config.max_worker_threads + 4)));
  // A supervisor that dies while the server still starts must not leave it holding the ports.
  const orphaned = () => process.exit(1);
  process.once('disconnect', orphaned);
  // Loaded here, not at the top: the supervisor never loads onnxruntime, express or gRPC (80 MB of RSS with them, 53 without).
  const { QuiverServer } = await import('../server');
  const server = await QuiverServer.start(config, { restoreSnapshot: supervised === 'restart' });
  process.off('disconnect', orphaned);
  let closing = false;
  const shutdown = (reason: string) => {
    if (closing) return;
    closing = true;
    log.info('shutting down: draining requests in flight', { reason, timeoutS: config.shutdown_timeout });
    server.shutdown(config.shutdown_timeout * 1000).then(
      (drained) => {
        log.info('shut down', { drained });
        return flushLog().then(() => process.exit(0));
      },
      (err) => {
        log.error('shutdown failed', { error: String(err) });
        return flushLog().then(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A supervised server whose supervisor is gone shuts down instead of living on as an orphan.
  process.on('disconnect', () => shutdown('supervisor exited'));
}

function config(args: string[]): void {
  const usage = `Usage: quiver config --print [serve options]\n\n${serveUsage()}`;
  const flags = configFlags(args, usage, { print: { type: 'boolean' } });
  if (flags.help || !flags.print) return void console.log(usage);
  delete flags.print;
  console.log(formatConfig(loadConfigWithSources(flags)));
}

async function archive(args: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        'model-name': { type: 'string' }, 'model-path': { type: 'string' }, version: { type: 'string' },
        'serialized-file': { type: 'string' }, handler: { type: 'string' }, 'extra-files': { type: 'string' },
        'archive-format': { type: 'string' }, 'export-path': { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true, allowPositionals: false,
    }).values;
  } catch (err) {
    throw new InvalidConfigError(`${(err as Error).message}\n\n${ARCHIVE_USAGE}`);
  }
  if (values.help) return void console.log(ARCHIVE_USAGE);
  if (typeof values['model-name'] !== 'string') throw new InvalidConfigError(`--model-name is required\n\n${ARCHIVE_USAGE}`);
  const format = (values['archive-format'] ?? 'default') as string;
  if (!['default', 'tgz', 'no-archive'].includes(format)) throw new InvalidConfigError(`--archive-format must be default, tgz or no-archive, got "${format}"`);
  const { createArchive } = await import('./archive');
  const target = await createArchive(
    {
      modelName: values['model-name'],
      modelPath: (values['model-path'] as string | undefined) ?? '.',
      version: (values.version as string | undefined) ?? '1.0',
      serializedFile: values['serialized-file'] as string | undefined,
      handler: values.handler as string | undefined,
      extraFiles: ((values['extra-files'] as string | undefined) ?? '').split(',').map((f) => f.trim()).filter(Boolean),
      format: format as ArchiveFormat,
      exportPath: (values['export-path'] as string | undefined) ?? '.',
      force: values.force === true,
    },
    VERSION,
  );
  console.log(target);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'config':
      return config(rest);
    case 'archive':
      return archive(rest);
    case 'bench': {
      // The benchmark ships with the source tree and needs its development install (npm install).
      const stress = path.join(__dirname, '..', '..', 'bench', 'stress.js');
      if (!fs.existsSync(stress)) throw new InvalidConfigError('quiver bench needs the source tree and its development install (npm install)');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return (require(stress) as { main(args: string[]): Promise<void> }).main(rest);
    }
    case '--version':
      return void console.log(VERSION);
    case undefined:
    case 'help':
    case '--help':
      return void console.log(`quiver ${VERSION}: quiver serve | quiver config --print | quiver archive | quiver bench\n\n${serveUsage()}\n\n${ARCHIVE_USAGE}`);
    default:
      throw new InvalidConfigError(`unknown command "${command}"; expected serve, config, archive or bench`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof QuiverError ? `${err.type}: ${err.message}` : (err as Error).message;
  console.error(`quiver: ${message}`);
  process.exit(CONFIG_EXIT_CODE);
});
