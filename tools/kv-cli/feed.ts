/**
 * `kv-cli --feed [--from N]`: the server's change feed (FEED), one line per
 * record, until interrupted (Ctrl-C) or the connection drops (exit 1).
 * Human/raw: `OFFSET set KEY VALUE`, `OFFSET del KEY`, plus `px-at MS` for an
 * expiry and `batch` / `batch-end` for members of an atomic batch; --json:
 * one object per line {offset, op, key, value, expiresAt, batch, batchEnd}.
 * Lines are flushed whenever the feed waits, so a pipe sees each record.
 */
import { KvError } from '../../src/errors.js';
import { EXIT_PROBLEMS, Output } from '../lib/cli.js';
import { cannotConnect, openClient } from './connection.js';
import type { CliOptions } from './options.js';
import { quote } from './quoting.js';

const WAIT = Symbol('wait');

export async function runFeed(o: CliOptions): Promise<number> {
  const client = openClient(o, { reconnect: false });
  const out = new Output();
  let connected = false;
  try {
    const feed = client.feed({ from: o.feedFrom });
    for (;;) {
      const pending = feed.next();
      let r = await Promise.race([pending, new Promise<typeof WAIT>((res) => setImmediate(() => res(WAIT)))]);
      if (r === WAIT) {
        // The feed is waiting on the network: show what we have first.
        await out.flush();
        r = await pending;
      }
      if (r.done) break;
      connected = true;
      const rec = r.value;
      const value = rec.value as Buffer | undefined;
      if (o.output === 'json') {
        await out.write(
          `${JSON.stringify({
            offset: rec.offset,
            op: rec.tombstone ? 'del' : 'set',
            key: rec.key,
            value: value === undefined ? null : value.toString('utf8'),
            expiresAt: rec.expiresAt,
            batch: rec.batch,
            batchEnd: rec.batchEnd,
          })}\n`,
        );
        continue;
      }
      let line = `${rec.offset} ${rec.tombstone ? 'del' : 'set'} ${quote(rec.keyBytes)}`;
      if (value !== undefined) line += ` ${quote(value)}`;
      if (rec.expiresAt !== 0) line += ` px-at ${rec.expiresAt}`;
      if (rec.batchEnd) line += ' batch-end';
      else if (rec.batch) line += ' batch';
      await out.write(`${line}\n`);
    }
    await out.flush();
    return 0;
  } catch (err) {
    await out.flush();
    const refused =
      err instanceof KvError && err.code !== 'CONNECTION_CLOSED' && err.code !== 'CONNECTION_FAILED';
    const message = refused ? `(error) ${err.code}: ${err.message}` : (err as Error).message;
    process.stderr.write(`${connected || refused ? message : cannotConnect(o, message)}\n`);
    return EXIT_PROBLEMS;
  } finally {
    await client.close();
  }
}
