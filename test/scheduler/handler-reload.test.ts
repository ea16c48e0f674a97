// A handler loaded again and again (register → unregister cycles) must not be kept by Node's module
// tree: each copy used to stay in its parent's `children`, growing RSS with every cycle.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { tempDir } from '../fixtures/server';

test('50 loads and releases of a handler leave no module behind', () => {
  const dir = writeModelFolder(path.join(tempDir('handler'), 'h'), addModel([1]), { handler: 'handler.js' }, {
    'handler.js': 'const big = new Array(1000).fill("x"); module.exports = { postprocess: (o) => ({ y: o.y.data[0], n: big.length }) };',
  });
  const script = path.join(tempDir('script'), 'cycle.js');
  const cache = path.join(__dirname, '..', '..', 'src', 'workers', 'session-cache.js');
  fs.writeFileSync(script, `
    const { SessionCache } = require(${JSON.stringify(cache)});
    const { parseModelConfig } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'models', 'model-config.js'))});
    (async () => {
      const sessions = new SessionCache({ intraOpThreads: 1, interOpThreads: 1 });
      const config = parseModelConfig({ handler: 'handler.js' }, 'model-config.json');
      for (let i = 0; i < 50; i++) {
        const spec = { key: 'h#' + i, name: 'h', version: '1', modelPath: ${JSON.stringify(path.join(dir, 'model.onnx'))}, config, handlerPath: ${JSON.stringify(path.join(dir, 'handler.js'))} };
        const model = await sessions.ensure(spec);
        if (!model.handler) throw new Error('handler not loaded');
        await sessions.release(spec.key);
      }
      const self = require.cache[require.resolve(${JSON.stringify(cache)})];
      const kept = self.children.filter((m) => m.filename.endsWith('handler.js')).length;
      const cached = Object.keys(require.cache).filter((f) => f.endsWith('handler.js')).length;
      console.log(JSON.stringify({ kept, cached }));
    })();
  `);
  const out = JSON.parse(execFileSync(process.execPath, [script]).toString().trim().split('\n').pop()!);
  expect(out).toEqual({ kept: 0, cached: 0 });
});
