// tsc compiles only TypeScript; the files a module reads at run time beside itself (the Redis
// store's Lua scripts) are copied into dist/ here, under the same relative paths.

const { cpSync, mkdirSync, readdirSync } = require('node:fs');
const { dirname, join } = require('node:path');

const root = join(__dirname, '..');
const ASSET = /\.lua$/;

function copyFrom(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) copyFrom(path);
    else if (ASSET.test(entry.name)) {
      const target = join(root, 'dist', path);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(root, path), target);
    }
  }
}

copyFrom('src');
