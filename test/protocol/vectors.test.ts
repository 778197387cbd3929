/**
 * Replays every vector of protocol/vectors.json against a fresh kv-server
 * process and compares the reply bytes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES } from '../../src/protocol/messages.js';
import { RawConnection, spawnServer } from '../server/spawn.js';

interface Step {
  conn?: number;
  send?: string;
  expect?: string;
  match?: 'exact' | 'id';
  closed?: boolean;
}
interface Vector {
  name: string;
  commands: string[];
  errors: string[];
  server: string[];
  steps: Step[];
}

const file = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../protocol/vectors.json'), 'utf8'),
) as {
  vectors: Vector[];
};
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

describe.concurrent('protocol/vectors.json', () => {
  it('covers every command and every error a server can send on the wire', () => {
    const commands = new Set(file.vectors.flatMap((v) => v.commands));
    const errors = new Set(file.vectors.flatMap((v) => v.errors));
    for (const c of COMMAND_NAMES) expect(commands).toContain(c);
    for (const e of [
      'PROTOCOL_ERROR',
      'UNKNOWN_COMMAND',
      'WRONG_ARGS',
      'NOAUTH',
      'AUTH_FAILED',
      'TOO_LARGE',
      'MAX_CLIENTS',
      'TIMEOUT',
      'INVALID_KEY',
      'INVALID_VALUE',
      'INVALID_ARGUMENT',
      'NOT_SUPPORTED',
    ]) {
      expect(errors).toContain(e);
    }
  });

  for (const vector of file.vectors) {
    it(vector.name, async () => {
      const server = await spawnServer({ args: vector.server });
      const conns: RawConnection[] = [];
      try {
        for (const [i, step] of vector.steps.entries()) {
          const n = step.conn ?? 0;
          conns[n] ??= await RawConnection.open(server.port);
          const conn = conns[n]!;
          if (step.send) conn.write(Buffer.from(step.send, 'hex'));
          if (step.expect) {
            const want = Buffer.from(step.expect, 'hex');
            if (step.match === 'id') {
              const got = await conn.frame();
              expect(got, `step ${i}: no reply`).toBeDefined();
              const reply = unpackr.unpack(got!.subarray(4)) as unknown[];
              const expected = unpackr.unpack(want.subarray(4)) as unknown[];
              expect(reply[0], `step ${i}: id`).toBe(expected[0]);
              if (reply.length === 3) {
                // An error outcome must be one the vector names.
                expect(vector.errors, `step ${i}: ${JSON.stringify(reply[2])}`).toContain(
                  (reply[2] as { code: string }).code,
                );
              } else expect(reply.length).toBe(2);
            } else {
              const got = await conn.take(want.length);
              expect(got.toString('hex'), `step ${i}`).toBe(want.toString('hex'));
            }
          }
          if (step.closed) {
            expect(await conn.until(() => conn.closed, 5000), `step ${i}: connection should close`).toBe(
              true,
            );
            expect(conn.received.length).toBe(0);
          }
        }
      } finally {
        for (const c of conns) c?.close();
        await server.stop('SIGKILL');
      }
    });
  }
});
