// Prints 1 when a C compiler here can build and link against libjpeg (the addon then decodes JPEGs
// itself), else 0; binding.gyp asks at every install, so a machine without libjpeg still builds.
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const source = '#include <stdio.h>\n#include <jpeglib.h>\nint main(void) { struct jpeg_error_mgr e; jpeg_std_error(&e); return 0; }\n';
const out = path.join(os.tmpdir(), `quiver-has-libjpeg-${process.pid}`);
const cc = process.env.CC || 'cc';
const r = spawnSync(cc, ['-x', 'c', '-', '-o', out, '-ljpeg'], { input: source, stdio: ['pipe', 'ignore', 'ignore'] });
try {
  require('node:fs').rmSync(out, { force: true });
} catch {}
process.stdout.write(r.status === 0 && process.env.QUIVER_NO_LIBJPEG !== '1' ? '1' : '0');
