import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

/** The folders tsconfig.build.json compiles into dist/. */
const SOURCE_DIRS = ['src', 'routes', 'services', 'scripts'];
const BUILD_CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Files a module reads beside itself at run time, which the build copies (scripts/copy-assets.js). */
function assetFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return assetFiles(full);
    return entry.name.endsWith('.lua') ? [full] : [];
  });
}

/**
 * Why dist/ does not match the source, or undefined when it does: a compiled file missing or
 * older than its source or than the build configuration. tsc rewrites every output on each
 * build, so one comparison per file is enough.
 */
export function distStaleness(): string | undefined {
  const configTime = Math.max(
    ...BUILD_CONFIGS.map((name) => statSync(path.join(ROOT, name)).mtimeMs),
  );
  for (const dir of SOURCE_DIRS) {
    for (const source of tsFiles(path.join(ROOT, dir))) {
      const relative = path.relative(ROOT, source).replace(/\.ts$/, '.js');
      const output = path.join(ROOT, 'dist', relative);
      if (!existsSync(output)) return `dist/${relative} is missing`;
      const outputTime = statSync(output).mtimeMs;
      if (outputTime < statSync(source).mtimeMs) return `dist/${relative} is older than its source`;
      if (outputTime < configTime) return `dist/${relative} is older than the build configuration`;
    }
  }
  for (const asset of assetFiles(path.join(ROOT, 'src'))) {
    const relative = path.relative(ROOT, asset);
    const output = path.join(ROOT, 'dist', relative);
    if (!existsSync(output) || statSync(output).mtimeMs < statSync(asset).mtimeMs) {
      return `dist/${relative} is missing or older than its source`;
    }
  }
  return undefined;
}

/**
 * Builds dist/ with `npm run build`'s compiler and configuration when it is stale, so the suites
 * that run the built server and the packed package always test the current source. A fresh
 * checkout after `npm ci` (which builds through `prepare`) pays nothing here.
 */
export function ensureBuilt(): void {
  const reason = distStaleness();
  if (!reason) return;
  console.warn(`\nNOTICE: building dist/ for the end-to-end and packaging suites (${reason})`);
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `npm run build failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}${result.stderr}`,
    );
  }
  // The second half of `npm run build`: the Lua scripts the Redis store reads beside itself.
  const copied = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'copy-assets.js')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (copied.status !== 0) throw new Error(`copying the build's assets failed:\n${copied.stderr}`);
}
