/**
 * The attack that retired the image captcha, as an attacker writes it: svg-captcha draws each
 * character as its font outline, moved into place and jittered by at most ±0.1, so comparing the
 * shape of each filled path with the library's own drawing of every candidate character reads the
 * text back. No OCR, no training: the public library is the whole key.
 */
type Draw = (text: string, options: { width: number; height: number; noise: number }) => string;
// The module's callable default (draw the given text) is missing from its typings.
const draw: Draw = require('svg-captcha');

interface Glyph {
  /** The path's command letters, which identify the outline up to its position. */
  commands: string;
  /** Its coordinates relative to the first point, so position no longer matters. */
  shape: number[];
  /** Where it sits, to put the characters back in reading order. */
  x: number;
}

function glyph(d: string): Glyph {
  const numbers = (d.match(/-?\d+(?:\.\d+)?/g) ?? []).map(Number);
  const [x0 = 0, y0 = 0] = numbers;
  return {
    commands: d.replace(/[^A-Za-z]/g, ''),
    shape: numbers.map((n, i) => n - (i % 2 === 0 ? x0 : y0)),
    x: x0,
  };
}

/** The outlines of an image's characters: its filled paths (noise lines have fill="none"). */
const filledPaths = (svg: string): Glyph[] =>
  [...svg.matchAll(/<path fill="(?!none)[^"]*" d="([^"]+)"/g)].map((m) => glyph(m[1] ?? ''));

const distance = (a: number[], b: number[]) =>
  a.reduce((sum, n, i) => sum + Math.abs(n - b[i]!), 0);

/** A solver for one alphabet: the library draws each character once, alone, as the reference. */
export function svgCaptchaSolver(alphabet: string): (svg: string) => string {
  const references = [...alphabet].map((char) => ({
    char,
    ...filledPaths(draw(char, { width: 150, height: 50, noise: 0 }))[0]!,
  }));
  return (svg) =>
    filledPaths(svg)
      .sort((a, b) => a.x - b.x)
      .map((seen) => {
        let best = { char: '?', score: Number.POSITIVE_INFINITY };
        for (const ref of references) {
          if (ref.commands !== seen.commands) continue;
          const score = distance(ref.shape, seen.shape);
          if (score < best.score) best = { char: ref.char, score };
        }
        return best.char;
      })
      .join('');
}
