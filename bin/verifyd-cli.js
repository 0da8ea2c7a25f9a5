#!/usr/bin/env node
// `npx verifyd-cli <command>`: the maintenance CLI (README, "Maintenance CLI") from the package,
// where `npm run cli` and its TypeScript runner are not available.

const { existsSync } = require('node:fs');
const path = require('node:path');

const entry = path.join(__dirname, '..', 'dist', 'scripts', 'cli.js');
if (!existsSync(entry)) {
  process.stderr.write('verifyd-cli: dist/ is missing; build it first with `npm run build`.\n');
  process.exit(1);
}
require(entry).runCli(process.argv.slice(2));
