import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Code blocks of README.md, read at test time: the end-to-end and packaging suites run what the
 * README shows, so a README that drifts from the product fails a test instead of a user.
 */
const README = path.join(__dirname, '..', '..', 'README.md');

export interface CodeBlock {
  lang: string;
  code: string;
}

/**
 * The fenced blocks of the section that starts with the heading line `heading` (e.g.
 * "## Embedding"), up to the next heading of the same or a higher level.
 */
export function sectionBlocks(heading: string): CodeBlock[] {
  const lines = readFileSync(README, 'utf8').split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start < 0) throw new Error(`README.md has no heading "${heading}"`);
  const level = heading.indexOf(' ');
  const blocks: CodeBlock[] = [];
  let open: CodeBlock | undefined;
  for (const line of lines.slice(start + 1)) {
    if (open) {
      if (line.startsWith('```')) {
        blocks.push(open);
        open = undefined;
      } else {
        open.code += `${line}\n`;
      }
      continue;
    }
    const headingLevel = /^(#+) /.exec(line)?.[1]?.length;
    if (headingLevel !== undefined && headingLevel <= level) break;
    if (line.startsWith('```')) open = { lang: line.slice(3).trim(), code: '' };
  }
  return blocks;
}

/** The first block of the section in one of `langs`; fails loudly when the README has none. */
export function firstBlock(heading: string, langs: string[]): string {
  const block = sectionBlocks(heading).find((candidate) => langs.includes(candidate.lang));
  if (!block) throw new Error(`README.md "${heading}" has no ${langs.join('/')} code block`);
  return block.code;
}
