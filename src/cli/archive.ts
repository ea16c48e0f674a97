// `quiver archive`: packs a model folder into an MMS-style archive, as torch-model-archiver does in
// the SageMaker workflow: MAR-INF/MANIFEST.json beside the model, its config, handler and extra files.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidConfigError, OutputExistsError } from '../errors';
import { ArchiveFile, writeFolder, writeTarGz, zipArchive } from '../models/archive-writer';
import { validateModelName } from '../models/model-name';

export type ArchiveFormat = 'default' | 'tgz' | 'no-archive';

export interface ArchiveOptions {
  /** Folder holding model.onnx and, optionally, model-config.json and a handler. */
  modelPath: string;
  modelName: string;
  version: string;
  serializedFile?: string;
  handler?: string;
  extraFiles: string[];
  format: ArchiveFormat;
  exportPath: string;
  force: boolean;
}

const EXTENSION: Record<ArchiveFormat, string> = { default: '.mar', tgz: '.tar.gz', 'no-archive': '' };

function mustExist(file: string, what: string): string {
  if (!fs.existsSync(file)) throw new InvalidConfigError(`${what} ${file} does not exist`);
  return file;
}

async function collect(source: string, prefix: string, out: ArchiveFile[]): Promise<void> {
  const stat = await fsp.stat(source);
  if (stat.isDirectory()) {
    for (const entry of await fsp.readdir(source)) await collect(path.join(source, entry), `${prefix}/${entry}`, out);
  } else if (stat.isFile()) {
    out.push({ name: prefix, content: await fsp.readFile(source) });
  }
}

function timestamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getDate())}/${two(date.getMonth() + 1)}/${date.getFullYear()} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

export async function createArchive(o: ArchiveOptions, archiverVersion: string): Promise<string> {
  const name = validateModelName(o.modelName);
  if (name.includes('/')) throw new InvalidConfigError('--model-name must not contain "/"');
  const modelPath = path.resolve(mustExist(o.modelPath, 'model path'));
  const serialized = path.resolve(modelPath, o.serializedFile ?? 'model.onnx');
  mustExist(serialized, 'serialized file');
  if (!serialized.endsWith('.onnx')) throw new InvalidConfigError(`serialized file ${serialized} is not an .onnx file`);

  const files: ArchiveFile[] = [{ name: path.basename(serialized), content: await fsp.readFile(serialized) }];
  const configFile = path.join(modelPath, 'model-config.json');
  let configHandler: string | undefined;
  if (fs.existsSync(configFile)) {
    const content = await fsp.readFile(configFile);
    configHandler = (JSON.parse(content.toString('utf8')) as { handler?: string }).handler;
    files.push({ name: 'model-config.json', content });
  }
  const handler = o.handler ?? configHandler;
  if (o.handler && configHandler && path.basename(o.handler) !== configHandler) {
    throw new InvalidConfigError(`--handler ${o.handler} differs from the handler "${configHandler}" in model-config.json`);
  }
  if (handler) {
    if (!/\.c?js$/.test(handler)) throw new InvalidConfigError(`handler ${handler} is not a JavaScript module (.js)`);
    const handlerFile = mustExist(path.resolve(modelPath, handler), 'handler');
    files.push({ name: path.basename(handlerFile), content: await fsp.readFile(handlerFile) });
  }
  for (const extra of o.extraFiles) {
    const source = mustExist(path.resolve(modelPath, extra), 'extra file');
    await collect(source, path.basename(source), files);
  }
  const manifest = {
    createdOn: timestamp(new Date()),
    runtime: 'node',
    engine: 'onnxruntime',
    model: {
      modelName: name,
      serializedFile: path.basename(serialized),
      ...(handler ? { handler: path.basename(handler) } : {}),
      modelVersion: o.version,
    },
    archiverVersion: archiverVersion,
  };
  const all = [{ name: 'MAR-INF/MANIFEST.json', content: Buffer.from(JSON.stringify(manifest, null, 2)) }, ...files];
  const seen = new Set<string>();
  for (const f of all) {
    if (seen.has(f.name)) throw new InvalidConfigError(`two files would be stored as ${f.name}`);
    seen.add(f.name);
  }

  await fsp.mkdir(o.exportPath, { recursive: true });
  const target = path.join(path.resolve(o.exportPath), `${name}${EXTENSION[o.format]}`);
  if (fs.existsSync(target)) {
    if (!o.force) throw new OutputExistsError(`${target} already exists; use --force to overwrite it`);
    await fsp.rm(target, { recursive: true, force: true });
  }
  if (o.format === 'no-archive') await writeFolder(target, all);
  else if (o.format === 'tgz') await writeTarGz(target, all);
  else await fsp.writeFile(target, zipArchive(all));
  return target;
}
