/** protocol/PROTOCOL.md stays in step with the code: commands, usage lines, error codes, limits. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, MAX_SCAN_COUNT, MAX_TTL_MS } from '../../src/engine/limits.js';
import * as limits from '../../src/protocol/limits.js';
import { COMMAND_NAMES, INFO_SECTIONS } from '../../src/protocol/messages.js';
import { COMMAND_USAGE } from '../../src/server/commands.js';

const root = resolve(import.meta.dirname, '../..');
const doc = readFileSync(resolve(root, 'protocol/PROTOCOL.md'), 'utf8');
const errorCodes = [...readFileSync(resolve(root, 'src/errors.ts'), 'utf8').matchAll(/\| '([A-Z_]+)'/g)].map(
  (m) => m[1]!,
);

describe('PROTOCOL.md', () => {
  it('documents every command under its own heading, with its usage', () => {
    for (const name of COMMAND_NAMES) {
      expect(doc).toContain(`### ${name}\n`);
      const usage = COMMAND_USAGE[name];
      // The usage's arguments appear in the section's request shape.
      const section = doc.slice(doc.indexOf(`### ${name}\n`)).split('\n### ')[0]!;
      expect(section).toContain(`"${name}"`);
      for (const word of usage.match(/[a-z]+/g) ?? []) {
        if (!['key', 'value', 'message', 'password', 'delta', 'section'].includes(word)) continue;
        expect(section, `${name} ${word}`).toContain(word);
      }
    }
  });

  it('lists every error code of src/errors.ts', () => {
    expect(errorCodes.length).toBeGreaterThan(15);
    for (const code of errorCodes) expect(doc, code).toContain(`\`${code}\``);
  });

  it('quotes the limits the code enforces', () => {
    expect(doc).toContain(`${limits.DEFAULT_MAX_FRAME_BYTES.toLocaleString('en-US')}`);
    expect(doc).toContain(`${limits.PREAUTH_MAX_FRAME_BYTES.toLocaleString('en-US')} bytes`);
    expect(doc).toContain(`${MAX_KEY_BYTES.toLocaleString('en-US')} bytes`);
    expect(doc).toContain(`1 … ${MAX_SCAN_COUNT.toLocaleString('en-US')}`);
    expect(doc).toContain(`1 … 2^52 ms (${MAX_TTL_MS.toLocaleString('en-US')})`);
    expect(doc).toMatch(new RegExp(`\\| ${limits.MAX_AUTH_FAILURES}, then closed`));
    expect(doc).toContain(`${limits.REPLY_HIGH_WATER_BYTES / 2 ** 20} MiB`);
    expect(doc).toContain(`${limits.MAX_INFLIGHT_REQUESTS.toLocaleString('en-US')}`);
    expect(doc).toContain(`${limits.DEFAULT_MAX_CLIENTS.toLocaleString('en-US')}`);
    expect(doc).toContain(`\`${limits.DEFAULT_HOST}:${limits.DEFAULT_PORT}\``);
    expect(doc).toContain(`# segkv wire protocol, version ${limits.PROTOCOL_VERSION}`);
    for (const s of INFO_SECTIONS) expect(doc).toMatch(new RegExp(`\\| \`${s}\` +\\|`));
  });
});
