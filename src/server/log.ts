/**
 * kv-server's logger: pino on stderr, JSON lines by default (for journald and
 * log shippers), readable lines (pino-pretty, in-process, synchronous) when
 * asked with `--log-format pretty` or, without the flag, when stderr is a
 * terminal. Writes are synchronous so the last lines before an exit are kept.
 * pino-pretty is loaded only when used (~35 ms of startup otherwise).
 */
import pino, { type Logger } from 'pino';
import type { LogFormat, LogLevel } from './config.js';

/** The format used when none is configured: pretty for a person at a terminal, JSON otherwise. */
export function defaultLogFormat(stderrIsTty: boolean): LogFormat {
  return stderrIsTty ? 'pretty' : 'json';
}

export async function createLogger(
  level: LogLevel,
  format: LogFormat | undefined,
  stderrIsTty = process.stderr.isTTY === true,
): Promise<Logger> {
  const chosen = format ?? defaultLogFormat(stderrIsTty);
  if (chosen === 'pretty') {
    const { default: pretty } = await import('pino-pretty');
    const stream = pretty({
      destination: 2,
      sync: true,
      colorize: stderrIsTty,
      translateTime: 'SYS:standard',
    });
    return pino({ name: 'kv-server', level }, stream);
  }
  return pino({ name: 'kv-server', level }, pino.destination({ dest: 2, sync: true }));
}
