/**
 * RESP connection commands: PING ECHO AUTH HELLO SELECT QUIT CLIENT.
 *
 * AUTH follows Redis 7 with one user, `default`, whose password is
 * kv-server's `--password`: `AUTH pw` and `AUTH default pw`; any other user
 * is WRONGPASS. Without a password every connection starts authenticated,
 * `AUTH pw` is refused as Redis refuses it, and `AUTH default anything` is
 * OK (Redis's nopass default user). Passwords compare in constant time.
 * SELECT accepts only database 0 (segkv has one keyspace). HELLO answers
 * `server: redis` and the Redis version whose semantics segkv follows
 * (REDIS_COMPAT_VERSION); INFO names segkv and its own version.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  command,
  intArg,
  type RespClientInfo,
  type RespCommand,
  type RespSession,
  word,
  wrongArity,
} from '../command.js';
import { err, OK, type Reply, RespError, RespMap, Simple, SYNTAX_ERROR } from '../reply.js';

/** The Redis version whose commands and replies segkv follows (HELLO version, INFO redis_version). */
export const REDIS_COMPAT_VERSION = '7.0.0';

const CONNECTION = { group: 'connection' } as const;

const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';

function digest(v: Uint8Array | string): Buffer {
  return createHash('sha256').update(v).digest();
}

/** Checks `user`/`password` (user undefined = `AUTH pw`); throws Redis's error, or authenticates. */
export function authenticate(s: RespSession, user: Buffer | undefined, password: Buffer): void {
  const expected = s.server.password;
  if (expected === undefined) {
    if (user === undefined) {
      throw err(
        'AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
      );
    }
    if (user.toString('latin1') === 'default') return;
    s.authFailed();
    throw new RespError(WRONGPASS);
  }
  const userOk = user === undefined || user.toString('latin1') === 'default';
  // Compare digests: constant time whatever the lengths.
  if (!userOk || !timingSafeEqual(digest(password), digest(expected))) {
    s.authFailed();
    throw new RespError(WRONGPASS);
  }
  if (!s.authenticated) {
    s.authenticated = true;
    s.onAuthenticated();
  }
}

/** Redis's rule for client names: printable ASCII without blanks. */
function checkClientName(name: Buffer): void {
  for (const c of name) {
    if (c < 0x21 || c > 0x7e)
      throw err('Client names cannot contain spaces, newlines or special characters.');
  }
}

function hello(s: RespSession, argv: Buffer[]): Reply {
  let next = 1;
  let ver = 0;
  if (argv.length >= 2) {
    let v: bigint;
    try {
      v = intArg(argv[next++]!);
    } catch {
      throw err('Protocol version is not an integer or out of range');
    }
    if (v < 2n || v > 3n) throw new RespError('NOPROTO unsupported protocol version');
    ver = Number(v);
  }
  let user: Buffer | undefined;
  let password: Buffer | undefined;
  let name: Buffer | undefined;
  for (let j = next; j < argv.length; j++) {
    const more = argv.length - 1 - j;
    const opt = word(argv[j]);
    if (opt === 'AUTH' && more >= 2) {
      user = argv[j + 1];
      password = argv[j + 2];
      j += 2;
    } else if (opt === 'SETNAME' && more >= 1) {
      name = argv[j + 1];
      j++;
    } else {
      throw err(`Syntax error in HELLO option '${argv[j]!.toString('latin1')}'`);
    }
  }
  if (user !== undefined && password !== undefined) authenticate(s, user, password);
  if (!s.authenticated) {
    throw new RespError(
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  }
  if (name !== undefined) {
    checkClientName(name);
    s.clientName = name.toString('latin1');
  }
  if (ver !== 0) s.proto = ver as 2 | 3;
  return new RespMap([
    ['server', 'redis'],
    ['version', REDIS_COMPAT_VERSION],
    ['proto', s.proto],
    ['id', s.id],
    ['mode', 'standalone'],
    ['role', 'master'],
    ['modules', []],
  ]);
}

/** One CLIENT LIST line, in Redis's field order (figures segkv does not track are 0). */
export function clientLine(c: RespClientInfo): string {
  return (
    `id=${c.id} addr=${c.addr} laddr=${c.laddr} fd=-1 name=${c.name} age=${c.ageSeconds} idle=${c.idleSeconds} ` +
    'flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 ' +
    `obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=${c.cmd} user=default redir=-1 resp=${c.resp}\n`
  );
}

const CLIENT_HELP = [
  'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GETNAME',
  '    Return the name of the current connection.',
  'ID',
  '    Return the ID of the current connection.',
  'INFO',
  '    Return information about the current client connection.',
  'LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)]',
  '    Return information about client connections. Options:',
  '    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
  '      Return clients of specified type.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'SETINFO <option> <value>',
  '    Set client meta attr. Options are: LIB-NAME, LIB-VER (accepted, not kept).',
  'HELP',
  '    Print this help.',
];

const CLIENT_SUBCOMMANDS: readonly RespCommand[] = [
  command(
    'client|id',
    2,
    'noscript loading stale',
    [0, 0, 0],
    { ...CONNECTION, summary: 'Returns the client ID for the current connection', since: '5.0.0' },
    (s) => s.id,
  ),
  command(
    'client|setname',
    3,
    'noscript loading stale',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Set the current connection name',
      since: '2.6.9',
      synopsis: 'connection-name',
    },
    (s, argv) => {
      checkClientName(argv[2]!);
      s.clientName = argv[2]!.toString('latin1');
      return OK;
    },
  ),
  command(
    'client|getname',
    2,
    'noscript loading stale',
    [0, 0, 0],
    { ...CONNECTION, summary: 'Get the current connection name', since: '2.6.9' },
    (s) => (s.clientName === '' ? null : s.clientName),
  ),
  command(
    'client|list',
    -2,
    'admin noscript loading stale',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Get the list of client connections',
      since: '2.4.0',
      complexity: 'O(N) where N is the number of client connections',
      synopsis: '[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id ...]',
    },
    (s, argv) => {
      let clients = s.server.clients();
      for (let j = 2; j < argv.length; j++) {
        const opt = word(argv[j]);
        if (opt === 'TYPE' && argv[j + 1] !== undefined) {
          const type = word(argv[++j]);
          if (!['NORMAL', 'MASTER', 'REPLICA', 'SLAVE', 'PUBSUB'].includes(type)) {
            throw err(`Unknown client type '${argv[j]!.toString('latin1')}'`);
          }
          if (type !== 'NORMAL') clients = [];
        } else if (opt === 'ID' && argv[j + 1] !== undefined) {
          const ids = new Set<number>();
          for (j++; j < argv.length; j++) {
            const id = intArg(argv[j]!);
            if (id <= 0n) throw err('Invalid client ID');
            ids.add(Number(id));
          }
          clients = clients.filter((c) => ids.has(c.id));
        } else throw new RespError(SYNTAX_ERROR);
      }
      return clients.map(clientLine).join('');
    },
  ),
  command(
    'client|info',
    2,
    'noscript loading stale',
    [0, 0, 0],
    { ...CONNECTION, summary: 'Returns information about the current client connection.', since: '6.2.0' },
    (s) => {
      const me = s.server.clients().find((c) => c.id === s.id);
      return me === undefined ? null : clientLine(me);
    },
  ),
  command(
    'client|setinfo',
    4,
    'noscript loading stale',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Set client or connection specific info',
      since: '7.2.0',
      synopsis: 'LIB-NAME libname|LIB-VER libver',
    },
    (_s, argv) => {
      const attr = word(argv[2]);
      if (attr !== 'LIB-NAME' && attr !== 'LIB-VER') {
        throw err(`Unrecognized option '${argv[2]!.toString('latin1')}'`);
      }
      return OK;
    },
  ),
  command(
    'client|help',
    2,
    'loading stale',
    [0, 0, 0],
    { ...CONNECTION, summary: 'Show helpful text about the different subcommands', since: '5.0.0' },
    () => CLIENT_HELP.map((line) => new Simple(line)),
  ),
];

export const CONNECTION_COMMANDS: readonly RespCommand[] = [
  command(
    'ping',
    -1,
    'fast sentinel',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Ping the server',
      since: '1.0.0',
      synopsis: '[message]',
      acl: 'fast connection',
    },
    (_s, argv) => {
      if (argv.length > 2) throw wrongArity('ping');
      return argv.length === 2 ? argv[1]! : new Simple('PONG');
    },
  ),
  command(
    'echo',
    2,
    'fast',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Echo the given string',
      since: '1.0.0',
      synopsis: 'message',
      acl: 'fast connection',
    },
    (_s, argv) => argv[1]!,
  ),
  command(
    'auth',
    -2,
    'noscript loading stale fast noauth allow_busy',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Authenticate to the server',
      since: '1.0.0',
      complexity: 'O(N) where N is the number of passwords defined for the user',
      synopsis: '[username] password',
      acl: 'fast connection',
    },
    (s, argv) => {
      if (argv.length > 3) throw new RespError(SYNTAX_ERROR);
      if (argv.length === 2) authenticate(s, undefined, argv[1]!);
      else authenticate(s, argv[1], argv[2]!);
      return OK;
    },
  ),
  command(
    'hello',
    -1,
    'noscript loading stale fast noauth allow_busy',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Handshake with Redis',
      since: '6.0.0',
      synopsis: '[protover [AUTH username password] [SETNAME clientname]]',
      acl: 'fast connection',
    },
    hello,
  ),
  command(
    'select',
    2,
    'loading stale fast',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'Change the selected database for the current connection',
      since: '1.0.0',
      synopsis: 'index',
      acl: 'fast connection',
    },
    (_s, argv) => {
      const db = intArg(argv[1]!);
      if (db < -(2n ** 31n) || db >= 2n ** 31n) throw err('value is not an integer or out of range');
      if (db !== 0n) throw err('DB index is out of range');
      return OK;
    },
  ),
  command(
    'quit',
    -1,
    'allow_busy noscript loading stale fast noauth',
    [0, 0, 0],
    { ...CONNECTION, summary: 'Close the connection', since: '1.0.0', acl: 'fast connection' },
    (s) => {
      s.quitAfterReply();
      return OK;
    },
  ),
  command(
    'client',
    -2,
    '',
    [0, 0, 0],
    {
      ...CONNECTION,
      summary: 'A container for client connection commands',
      since: '2.4.0',
      complexity: 'Depends on subcommand.',
    },
    () => {
      throw new RespError('ERR the table dispatches CLIENT subcommands');
    },
    CLIENT_SUBCOMMANDS,
  ),
];
