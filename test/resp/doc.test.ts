/** protocol/PROTOCOL.md §12 stays in step with the RESP command table. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSynopsis } from '../../src/resp/docs.js';
import { RESP_COMMANDS } from '../../src/resp/table.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../protocol/PROTOCOL.md'), 'utf8');
const section = doc.slice(doc.indexOf('## 12. Redis clients (RESP)'));

describe('PROTOCOL.md §12', () => {
  it('lists every RESP command and every CLIENT/CONFIG/COMMAND subcommand', () => {
    expect(section.length).toBeGreaterThan(1000);
    for (const [name, c] of RESP_COMMANDS) {
      expect(section, name).toMatch(new RegExp(`\\b${name.toUpperCase()}\\b`));
      for (const sub of c.subcommands ?? []) {
        const word = sub.name.split('|')[1]!.toUpperCase();
        expect(section, sub.name).toMatch(new RegExp(`\\b${word}\\b`));
      }
    }
  });

  it('every command synopsis parses into COMMAND DOCS arguments', () => {
    for (const c of RESP_COMMANDS.values()) {
      for (const x of [c, ...(c.subcommands ?? [])]) {
        if (x.synopsis !== '') expect(parseSynopsis(x.synopsis).length, x.name).toBeGreaterThan(0);
      }
    }
    expect(parseSynopsis('key value [NX|XX] [EX seconds|KEEPTTL]')).toEqual([
      { name: 'key', type: 'key', keySpec: 0 },
      { name: 'value', type: 'string' },
      {
        name: 'nx-xx',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'nx', type: 'pure-token', token: 'NX' },
          { name: 'xx', type: 'pure-token', token: 'XX' },
        ],
      },
      {
        name: 'seconds-keepttl',
        type: 'oneof',
        optional: true,
        arguments: [
          { name: 'seconds', type: 'integer', token: 'EX' },
          { name: 'keepttl', type: 'pure-token', token: 'KEEPTTL' },
        ],
      },
    ]);
  });
});
