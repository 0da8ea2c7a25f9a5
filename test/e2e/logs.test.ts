/**
 * What a person sees when they start the built server: coloured, readable lines at a terminal in
 * development, JSON lines otherwise (a pipe, a log collector), and a start-up line that says where
 * the docs and the dev inbox are. The terminal is a real pseudo-terminal, made by util-linux's
 * `script`.
 */
import { startVerifyd, VERIFYD_BIN } from '../support/verifyd-process';

const SECRETS = {
  OTP_SECRET: 'e2e-otp-secret-0123456789abcdef0123456789',
  JWT_SECRET: 'e2e-jwt-secret-0123456789abcdef0123456789',
};

async function startupOutput(
  env: Record<string, string>,
  command?: { file: string; args: string[] },
): Promise<{ output: string; port: number }> {
  const verifyd = await startVerifyd({ ...SECRETS, LOG_LEVEL: 'info', ...env }, command);
  try {
    // The start-up line comes once the server listens, which startVerifyd waited for.
    for (let i = 0; i < 50 && !verifyd.output().includes('/docs'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { output: verifyd.output(), port: verifyd.port };
  } finally {
    await verifyd.stop();
  }
}

describe('logs', () => {
  it('are coloured lines at a terminal in development, naming the docs and dev inbox', async () => {
    const { output, port } = await startupOutput(
      { NODE_ENV: 'development' },
      { file: 'script', args: ['-qfec', `"${process.execPath}" "${VERIFYD_BIN}"`, '/dev/null'] },
    );
    // ANSI colour sequences, and no JSON lines.
    expect(output).toContain('\u001b[');
    expect(output).not.toMatch(/^\{"level"/m);
    expect(output).toContain(`http://127.0.0.1:${port}/docs`);
    expect(output).toContain(
      `dev inbox (codes and links the mock providers sent) at http://127.0.0.1:${port}/dev`,
    );
  }, 60_000);

  it('are JSON lines when stdout is not a terminal, with the URLs as fields', async () => {
    const { output, port } = await startupOutput({ NODE_ENV: 'development' });
    const lines = output
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const start = lines.find((line) => typeof line.docs === 'string');
    expect(start).toMatchObject({
      level: 30,
      url: `http://127.0.0.1:${port}`,
      docs: `http://127.0.0.1:${port}/docs`,
      devInbox: `http://127.0.0.1:${port}/dev`,
      store: 'memory',
      sms: 'mock',
    });
    expect(output).not.toContain('\u001b[');
  }, 60_000);
});
