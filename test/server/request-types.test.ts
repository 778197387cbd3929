/**
 * What a request may hold (PROTOCOL.md §3, issue 11 "gaps"): no MessagePack
 * extension anywhere (msgpackr decoded some into a Date, a typed array that
 * passed for a bin key, and was fatal on others), and every str valid UTF-8
 * (a str key with invalid UTF-8 was stored under U+FFFD, a different key
 * from the bin of the same bytes). Both are refused as a normal error
 * reply, the connection stays usable, and the usual order holds (unknown
 * command, then NOAUTH, then the argument).
 */
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRequest } from '../../src/protocol/request-check.js';
import { rawFrame } from '../../tools/lib/raw-connection.js';
import { RawConnection, type ServerProcess, spawnServer } from './spawn.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');
/** [id, cmd, ...] with each raw argument's bytes spliced in as given. */
function request(id: number, cmd: string, ...raw: Buffer[]): Buffer {
  const head = packr.pack([id, cmd]); // fixarray 2 + id + cmd
  const body = Buffer.concat([Buffer.of(0x90 | (2 + raw.length)), head.subarray(1), ...raw]);
  return rawFrame(body);
}
const str = (b: Buffer) => Buffer.concat([Buffer.of(0xa0 | b.length), b]);
const INVALID_UTF8_KEY = str(Buffer.from([0x6b, 0xff])); // "k" then a byte that is never UTF-8
const TIMESTAMP = hex('d6ff 00000000'); // ext -1, 32-bit seconds
const EXT_42 = hex('d42a 00');
const TYPED_ARRAY = hex('c7 04 74 01 6b6b6b'); // msgpackr's typed-array ext: a Uint8Array "kkk"

let server: ServerProcess;
let authServer: ServerProcess;

beforeAll(async () => {
  [server, authServer] = await Promise.all([spawnServer(), spawnServer({ args: ['--password', 'pw'] })]);
});

afterAll(async () => {
  await Promise.all([server?.stop('SIGKILL'), authServer?.stop('SIGKILL')]);
});

async function next(c: RawConnection): Promise<unknown> {
  return c.next(5000);
}

describe('strs that are not UTF-8', () => {
  it('a str key or value with invalid UTF-8 is INVALID_ARGUMENT and nothing is stored', async () => {
    const c = await RawConnection.open(server.port);
    c.write(request(1, 'SET', INVALID_UTF8_KEY, str(Buffer.from('v'))));
    expect(await next(c)).toMatchObject([
      1,
      null,
      { code: 'INVALID_ARGUMENT', message: expect.stringContaining('UTF-8') },
    ]);
    c.write(request(2, 'SET', str(Buffer.from('k')), INVALID_UTF8_KEY));
    expect(await next(c)).toMatchObject([2, null, { code: 'INVALID_ARGUMENT' }]);
    c.write(rawFrame(packr.pack([3, 'GET', Buffer.from([0x6b, 0xff])])));
    expect(await next(c)).toEqual([3, null]);
    c.write(rawFrame(packr.pack([4, 'GET', 'k\ufffd'])));
    expect(await next(c)).toEqual([4, null]);
    c.write(rawFrame(packr.pack([5, 'DBSIZE'])));
    expect(await next(c)).toEqual([5, 0]);
    // In an options map too.
    c.write(request(6, 'SCAN', hex('81 a6 707265666978'), INVALID_UTF8_KEY));
    expect(await next(c)).toMatchObject([6, null, { code: 'INVALID_ARGUMENT' }]);
    c.close();
  });

  it('valid non-ASCII strs are untouched', async () => {
    const c = await RawConnection.open(server.port);
    c.write(rawFrame(packr.pack([1, 'SET', 'ключ', 'значение ✓'])));
    expect(await next(c)).toEqual([1, true]);
    c.write(rawFrame(packr.pack([2, 'GET', Buffer.from('ключ')])));
    expect(await next(c)).toEqual([2, Buffer.from('значение ✓')]);
    c.close();
  });
});

describe('extension values', () => {
  it('any extension in an argument is WRONG_ARGS, not fatal, and never taken for a key', async () => {
    const c = await RawConnection.open(server.port);
    c.write(request(1, 'GET', TIMESTAMP));
    expect(await next(c)).toMatchObject([
      1,
      null,
      { code: 'WRONG_ARGS', message: expect.stringContaining('type -1') },
    ]);
    c.write(request(2, 'GET', EXT_42));
    expect(await next(c)).toMatchObject([
      2,
      null,
      { code: 'WRONG_ARGS', message: expect.stringContaining('type 42') },
    ]);
    c.write(request(3, 'SET', TYPED_ARRAY, str(Buffer.from('v'))));
    expect(await next(c)).toMatchObject([3, null, { code: 'WRONG_ARGS' }]);
    c.write(
      request(
        4,
        'SET',
        str(Buffer.from('k')),
        str(Buffer.from('v')),
        Buffer.concat([hex('81 a3 74746c'), EXT_42]),
      ),
    );
    expect(await next(c)).toMatchObject([4, null, { code: 'WRONG_ARGS' }]);
    c.write(rawFrame(packr.pack([5, 'EXISTS', 'kkk', 'k'])));
    expect(await next(c)).toEqual([5, 0]);
    c.close();
  });

  it('an extension as the id is fatal PROTOCOL_ERROR; as the command name, a PROTOCOL_ERROR reply', async () => {
    const c = await RawConnection.open(server.port);
    c.write(rawFrame(Buffer.concat([hex('93 01'), EXT_42, str(Buffer.from('x'))])));
    expect(await next(c)).toMatchObject([1, null, { code: 'PROTOCOL_ERROR' }]);
    c.write(rawFrame(Buffer.concat([hex('92'), EXT_42, str(Buffer.from('PING'))])));
    expect(await next(c)).toMatchObject([null, null, { code: 'PROTOCOL_ERROR' }]);
    expect(await next(c)).toBe('closed');
  });

  it('before AUTH, NOAUTH comes first; an unknown command is UNKNOWN_COMMAND', async () => {
    const c = await RawConnection.open(authServer.port);
    c.write(request(1, 'GET', EXT_42));
    expect(await next(c)).toMatchObject([1, null, { code: 'NOAUTH' }]);
    c.write(request(2, 'NOPE', EXT_42));
    expect(await next(c)).toMatchObject([2, null, { code: 'UNKNOWN_COMMAND' }]);
    c.write(request(3, 'PING', EXT_42));
    expect(await next(c)).toMatchObject([3, null, { code: 'WRONG_ARGS' }]);
    c.close();
  });
});

describe('checkRequest', () => {
  it('finds nothing in ordinary requests, and leaves malformed bodies to the decoder', () => {
    for (const v of [
      [1, 'SET', 'k', Buffer.from([0xff]), { ttl: 5, nx: true }],
      [2 ** 32 - 1, 'MGET', ...'abc'],
      [0, 'PING', 'é'],
    ])
      expect(checkRequest(packr.pack(v))).toBeUndefined();
    expect(checkRequest(hex('93 01'))).toBeUndefined();
    expect(checkRequest(hex('a3 414243'))).toBeUndefined();
    expect(checkRequest(Buffer.concat([hex('93 07 a3 474554'), EXT_42]))).toMatchObject({
      element: 2,
      problem: 'extension',
      extType: 42,
      id: 7,
      name: 'GET',
    });
  });

  it('leaves an extension cut short by the end of the body to the decoder (a frame that ends inside it)', () => {
    // [id, "AUTH", fixext 1 with no type byte]: found by the bad-input property, was INTERNAL.
    expect(checkRequest(hex('93 ce247f5915 a4 41555448 d4'))).toBeUndefined();
    expect(checkRequest(hex('93 01 a4 41555448 d4 2a'))).toBeUndefined(); // type, no data
    expect(checkRequest(hex('93 01 a4 41555448 c7'))).toBeUndefined(); // ext 8 without its length
    expect(checkRequest(hex('93 01 a4 41555448 c8 0005 2a 0102'))).toBeUndefined(); // 2 of 5 data bytes
    expect(checkRequest(hex('93 01 a4 41555448 c7 02 2a 0102'))).toMatchObject({
      problem: 'extension',
      extType: 42,
    });
    expect(checkRequest(hex('93 01 a4 41555448 d5 2a 0102'))).toMatchObject({
      problem: 'extension',
      extType: 42,
    });
  });

  it('a server answers a frame that ends inside an extension with an error, not INTERNAL', async () => {
    const c = await RawConnection.open(authServer.port);
    c.write(Buffer.from('0000000c93ce247f5915a441555448d4', 'hex'));
    const reply = (await next(c)) as unknown[];
    expect(reply[2]).toMatchObject({ code: 'PROTOCOL_ERROR' });
    c.close();
  });
});
