/**
 * `kv-cli -c`: redis-cli's cluster mode. A command answered with
 * `MOVED slot host:port` is sent again to host:port, and the CLI stays
 * connected there (the prompt names the new node), as `redis-cli -c` does.
 * At the prompt each redirect prints `-> Redirected to slot [N] located at
 * host:port`; one-shot mode follows silently (redis-cli prints it only when
 * interactive). segkv has no resharding in flight, so it never answers ASK.
 */
import type { Reply } from './reply.js';

/** Redirects one command may follow before its last MOVED is printed as the reply. */
export const MAX_REDIRECTS = 16;

export interface Redirect {
  readonly slot: number;
  readonly host: string;
  readonly port: number;
}

/** The node a MOVED reply points at, or undefined for any other reply. */
export function redirectOf(reply: Reply): Redirect | undefined {
  if (reply.type !== 'error' || reply.code !== 'MOVED') return undefined;
  const m = /^(\d+) (.+):(\d{1,5})$/.exec(reply.message);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { slot: Number(m[1]), host: m[2]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** redis-cli's line for a followed redirect. */
export function redirectLine(r: Redirect): string {
  return `-> Redirected to slot [${r.slot}] located at ${r.host}:${r.port}\n`;
}
