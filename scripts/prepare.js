// npm runs `prepare` after `npm install`/`npm ci` in a checkout and before `npm pack`. It builds
// dist/ when the TypeScript compiler is installed; a production install (--omit=dev) has none, and
// then keeps the dist/ it was given instead of failing the install.

const { spawnSync } = require('node:child_process');

let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  process.stderr.write('verifyd: TypeScript is not installed, so dist/ is not rebuilt.\n');
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
if (result.status !== 0) process.exit(result.status ?? 1);
require('./copy-assets.js');
