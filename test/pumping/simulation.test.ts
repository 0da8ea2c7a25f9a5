import { simulate } from '../../simulation/engine';
import { GOALS } from '../../simulation/main';

/**
 * The short version of `npm run simulate` (simulation/engine.ts): the same people and attackers
 * against the assembled app, on the memory store, for three daytime hours at half the attack
 * rate, so it runs in CI time. The README's figures come from the full day.
 */
describe('SMS pumping simulation, short version', () => {
  const run = (env: Record<string, string> = {}, hours = 3) =>
    simulate({
      hours,
      startHour: 9,
      peoplePerDay: 3000,
      attackScale: 0.5,
      seed: 17,
      store: 'memory',
      env,
    });

  it('meets the goals: after the first hour 98% of attacker SMS stopped, at most 5% of people asked for a proof and 0.5% refused', async () => {
    const result = await run();
    const { total, afterFirstHour } = result;
    // The run is big enough to mean something.
    expect(total.attackerWanted).toBeGreaterThan(1000);
    expect(total.people).toBeGreaterThan(300);
    expect(afterFirstHour.stopped).toBeGreaterThanOrEqual(GOALS.stopped);
    expect(total.challengedShare).toBeLessThanOrEqual(GOALS.challengedShare);
    expect(total.refusedShare).toBeLessThanOrEqual(GOALS.refusedShare);
    // People still verify as they would without any attack: about 88% enter their code.
    expect(total.peopleVerified / total.people).toBeGreaterThan(0.8);
    // Each kind of attack met its defence.
    expect(result.attackerStops.number_type_not_allowed).toBeGreaterThan(0);
    expect(result.attackerStops.destination_suspended).toBeGreaterThan(0);
    expect(result.signals['conversion escalated']).toBeGreaterThan(0);
  }, 300_000);

  it('without the defences the same attack gets most of its SMS sent', async () => {
    const result = await run({ SMS_PUMPING_DEFENCES: 'off' }, 1);
    expect(result.total.attackerWanted).toBeGreaterThan(300);
    expect(result.total.stopped).toBeLessThan(0.5);
  }, 300_000);
});
