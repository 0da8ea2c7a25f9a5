import type { Config } from '../../src/config';
import { type Clock, systemClock } from '../runtime';
import { type FraudOverview, liftDestination, parseDestination, readFraudState } from './admin';
import type { HeldState } from './index';
import type { PumpingStore } from './keys';
import { pumpingSettings } from './settings';

export interface FraudCommandOptions {
  config: Config;
  store: PumpingStore;
  /** A country code or a prefix to lift; without it the command lists. */
  lift?: string | undefined;
  out(line?: string): void;
  err(line?: string): void;
  clock?: Clock;
}

/** Exit codes as the rest of the CLI uses them. */
const OK = 0;
const FAILED = 1;
const USAGE = 2;

export const FRAUD_USAGE = `  fraud [--lift <country or prefix>]
                       SMS pumping blocks and escalations in force; --lift GB or
                       --lift +447400123 ends one and keeps it from returning for a hold`;

/**
 * `cli fraud`: lists what the SMS pumping defences hold right now (countries past their hourly
 * limit or escalated for their conversion rate, blocked or escalated prefixes, the daily soft
 * budget), or lifts one destination. Self-contained, so the CLI only registers it.
 */
export async function fraudCommand(options: FraudCommandOptions): Promise<number> {
  const { config, store, out, err } = options;
  const clock = options.clock ?? systemClock;
  const settings = pumpingSettings(config);
  if (options.lift !== undefined) {
    const scope = parseDestination(options.lift);
    if (!scope) {
      err(
        `--lift takes a country code (GB, or 001 for numbers outside any country) or a prefix as listed (+447400123), not "${options.lift}".`,
      );
      return USAGE;
    }
    const lifted = await liftDestination(store, settings, clock, scope);
    if (lifted.removed.length === 0) {
      err(`Nothing is in force for ${scope.kind} ${scope.name}; nothing was lifted.`);
      return FAILED;
    }
    out(
      `Lifted ${lifted.removed.join(', ')} for ${scope.kind} ${scope.name}; it cannot be ` +
        `${scope.kind === 'prefix' ? 'blocked or ' : ''}escalated again until ${iso(lifted.until)}.`,
    );
    return OK;
  }

  const overview = await readFraudState(store, settings, clock);
  out(
    `verifyd: SMS pumping defences ${settings.enabled ? 'on' : 'off'} (SMS_PUMPING_DEFENCES=${config.SMS_PUMPING_DEFENCES}), ${config.STORE} store, key prefix "${config.KEY_PREFIX}"`,
  );
  if (config.STORE === 'memory') {
    out(
      'Note: STORE=memory lives inside each server process; this CLI sees only its own, empty store.',
    );
  }
  printOverview(overview, clock.now(), out);
  return OK;
}

function printOverview(overview: FraudOverview, now: number, out: (line?: string) => void): void {
  out();
  if (overview.countries.length === 0) {
    out('Countries: none past their hourly limit or escalated.');
  } else {
    out('Countries');
    const rows = overview.countries.map((c) => [
      c.country,
      `${c.volume} (proof past ${c.limit}, refused past ${c.refuseAt})`,
      conversion(c.refuse ?? c.proof, c.refuse ? 'refused' : c.proof ? 'proof' : undefined, now),
      c.lift ? `lifted until ${iso(c.lift.until)}` : '',
    ]);
    for (const line of table(['COUNTRY', 'SMS THIS HOUR', 'CONVERSION', 'LIFT'], rows)) out(line);
  }
  out();
  if (overview.prefixes.length === 0) {
    out('Prefixes: none blocked or escalated.');
  } else {
    out('Prefixes');
    const rows = overview.prefixes.map((p) => [
      p.shown,
      p.country,
      p.block
        ? `blocked until ${iso(p.block.until)} (${p.block.distinct} numbers in an hour, limit ${p.block.threshold})`
        : '',
      conversion(p.refuse ?? p.proof, p.refuse ? 'refused' : p.proof ? 'proof' : undefined, now),
      p.lift ? `lifted until ${iso(p.lift.until)}` : '',
    ]);
    for (const line of table(['PREFIX', 'COUNTRY', 'VELOCITY', 'CONVERSION', 'LIFT'], rows)) {
      out(line);
    }
  }
  if (overview.daily) {
    out();
    const { sent, softBudget } = overview.daily;
    out(
      `Daily soft budget: ${sent} of ${softBudget} SMS today${sent > softBudget ? ': every send needs a proof' : ''}.`,
    );
  }
  out();
  out('Lift one with: npm run cli -- fraud --lift <country or prefix>');
}

function conversion(state: HeldState | undefined, level: string | undefined, now: number): string {
  if (!state || !level) return '';
  const evidence =
    typeof state.sent === 'number'
      ? ` (${state.approved} of ${state.sent} entered, upper bound ${state.upper} < ${state.floor})`
      : '';
  return `${level} for ${Math.round((state.until - now) / 60_000)} min${evidence}`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
