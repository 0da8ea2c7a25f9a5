/**
 * Prints the configuration as .env.example (`env`) or as the README's Markdown table (`table`),
 * from the schema's defaults and CONFIG_DOCS, so the documents cannot drift from the code.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../src/config';
import { CONFIG_DOCS } from '../src/config-docs';

type Variable = keyof typeof CONFIG_DOCS;

export function defaultOf(name: Variable): string {
  const field = configSchema.shape[name];
  const parsed = field.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return '';
  const value = parsed.data as unknown;
  return Array.isArray(value) ? value.join(',') : String(value);
}

export function renderEnvExample(): string {
  const lines = [
    '# verifyd configuration. Every variable is optional in development; defaults shown.',
    '',
  ];
  let group = '';
  for (const [name, doc] of Object.entries(CONFIG_DOCS) as [
    Variable,
    { group: string; text: string },
  ][]) {
    if (doc.group !== group) {
      group = doc.group;
      lines.push(`# --- ${group} ---`);
    }
    lines.push(`# ${doc.text}`, `${name}=${defaultOf(name)}`);
  }
  return `${lines.join('\n')}\n`;
}

export function renderTable(): string {
  const rows = ['| Variable | Default | Meaning |', '|---|---|---|'];
  for (const [name, doc] of Object.entries(CONFIG_DOCS) as [
    Variable,
    { group: string; text: string },
  ][]) {
    const value = defaultOf(name);
    // Markdown would take "<address>" for an HTML tag and show nothing of it.
    const text = doc.text.replaceAll('|', '\\|').replaceAll('<', '&lt;');
    rows.push(
      `| \`${name}\` | ${value === '' ? '(empty)' : `\`${value.replaceAll('|', '\\|')}\``} | ${text} |`,
    );
  }
  return `${rows.join('\n')}\n`;
}

/** Rewrites .env.example and the README's table (from its header row to the end marker). */
function writeDocs(): void {
  const root = join(__dirname, '..');
  writeFileSync(join(root, '.env.example'), renderEnvExample());
  const readmePath = join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const start = readme.indexOf('| Variable | Default | Meaning |');
  const end = readme.indexOf('<!-- config-table:end -->', start);
  if (start < 0 || end < 0) throw new Error('README.md has no configuration table');
  writeFileSync(readmePath, `${readme.slice(0, start)}${renderTable()}${readme.slice(end)}`);
}

if (require.main === module) {
  const what = process.argv[2];
  if (what === 'env') process.stdout.write(renderEnvExample());
  else if (what === 'table') process.stdout.write(renderTable());
  else if (what === 'write') writeDocs();
  else {
    process.stderr.write('usage: tsx scripts/config-docs.ts env|table|write\n');
    process.exit(2);
  }
}
