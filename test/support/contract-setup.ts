/**
 * Runs after each test of every suite: any answer that test got from an app of buildTestApp that
 * the app's own OpenAPI document does not describe fails the test (see ./contract.ts).
 */
import { violations } from './contract';

afterEach(() => {
  if (violations.length === 0) return;
  const found = violations.splice(0);
  throw new Error(`Answers the OpenAPI document does not describe:\n${found.join('\n')}`);
});
