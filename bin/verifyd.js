#!/usr/bin/env node
// `npx verifyd` and `npm start`: the compiled server, never a build step, so a production install
// without dev dependencies starts as it is.

const { existsSync } = require('node:fs');
const path = require('node:path');

const entry = path.join(__dirname, '..', 'dist', 'src', 'server.js');
if (!existsSync(entry)) {
  // Only a source checkout can lack dist/ (the package ships it): say how to get it.
  process.stderr.write('verifyd: dist/ is missing; build it first with `npm run build`.\n');
  process.exit(1);
}

// `npx verifyd migrate`: create or migrate the SQL store's tables, then exit (the CLI's command).
if (process.argv[2] === 'migrate') {
  require(path.join(__dirname, '..', 'dist', 'scripts', 'cli.js')).runCli(process.argv.slice(2));
} else {
  // main() reports a failed start itself and exits non-zero.
  require(entry).main();
}
