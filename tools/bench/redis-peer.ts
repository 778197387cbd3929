/**
 * The Redis peer of the benchmarks (DESIGN.md §7): starts a private
 * `redis-server` on a loopback port with its own temporary directory, talks
 * to it with a minimal RESP client over node:net (pipelined), and stops it.
 *
 * Only what the benchmarks need: simple strings, errors, integers and bulk
 * strings in replies; commands are arrays of bulk strings.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';

export type Reply = string | number | Buffer | null | Error;

interface Pending {
  /** Replies still expected for this entry (a pipelined batch expects many). */
  remaining: number;
  last: Reply;
  firstError: Error | undefined;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

const CRLF = Buffer.from('\r\n');

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(parts);
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d) => this.onData(d));
    socket.on('error', (err) => this.failAll(err));
    socket.on('close', () => this.failAll(new Error('redis connection closed')));
  }

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        resolve(new RespClient(s));
      });
      s.once('error', reject);
    });
  }

  /** Sends one command; resolves with its reply (rejects on an error reply). */
  command(args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.send(encodeCommand(args), 1);
  }

  /** Sends pre-encoded commands; resolves with the last of their `count` replies once all have arrived. */
  send(data: Buffer, count: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.pending.push({ remaining: count, last: null, firstError: undefined, resolve, reject });
      this.socket.write(data);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let at = 0;
    for (;;) {
      const parsed = parseReply(this.buf, at);
      if (!parsed) break;
      at = parsed.end;
      const p = this.pending[0];
      if (!p) throw new Error('redis sent a reply nobody asked for');
      p.last = parsed.reply;
      if (parsed.reply instanceof Error) p.firstError ??= parsed.reply;
      if (--p.remaining === 0) {
        this.pending.shift();
        if (p.firstError) p.reject(p.firstError);
        else p.resolve(p.last);
      }
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
  }
}

function parseReply(buf: Buffer, at: number): { reply: Reply; end: number } | undefined {
  if (at >= buf.length) return undefined;
  const eol = buf.indexOf(CRLF, at);
  if (eol < 0) return undefined;
  const type = buf[at];
  const line = buf.toString('latin1', at + 1, eol);
  switch (type) {
    case 0x2b: // +
      return { reply: line, end: eol + 2 };
    case 0x2d: // -
      return { reply: new Error(`redis: ${line}`), end: eol + 2 };
    case 0x3a: // :
      return { reply: Number(line), end: eol + 2 };
    case 0x24: {
      // $
      const n = Number(line);
      if (n < 0) return { reply: null, end: eol + 2 };
      if (eol + 2 + n + 2 > buf.length) return undefined;
      return { reply: buf.subarray(eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    default:
      throw new Error(`unsupported RESP reply type ${String.fromCharCode(type ?? 0)}`);
  }
}

/** Parses an INFO reply into a map of field to value. */
export function parseInfo(reply: Reply): Map<string, string> {
  const m = new Map<string, string>();
  const text = Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply);
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

/** The path of redis-server, or undefined if it is not installed. */
export function findRedisServer(explicit?: string): string | undefined {
  if (explicit) return explicit;
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

/**
 * `apt-get update && apt-get install -y redis-server` (stdout discarded,
 * stderr shown); the exit status.
 */
export function aptInstallRedis(): number | null {
  return spawnSync('sh', ['-c', 'apt-get update -q && apt-get install -y -q redis-server'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  }).status;
}

/**
 * The redis-server command line of the benchmarks: loopback `port`, data in
 * `dir` (log in dir/redis.log), AOF on with `appendfsync`, no RDB saves,
 * `extra` options, in the foreground.
 */
export function redisServerArgs(
  port: number,
  dir: string,
  appendfsync: 'everysec' | 'always',
  extra: readonly string[] = [],
): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    appendfsync,
    '--save',
    '',
    ...extra,
    '--daemonize',
    'no',
    '--logfile',
    join(dir, 'redis.log'),
  ];
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RewriteTiming {
  /** Wall time from sending BGREWRITEAOF to INFO reporting no rewrite in progress or scheduled, ms. */
  wallMs: number;
  /** Redis's own aof_last_rewrite_time_sec (whole seconds). */
  redisSec: number;
  status: string;
}

/** A private redis-server: AOF on with `appendfsync everysec`, no RDB snapshots, no automatic AOF rewrite. */
export class RedisPeer {
  readonly aofDir: string;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly proc: ChildProcess,
    readonly client: RespClient,
    readonly version: string,
  ) {
    this.aofDir = join(dir, 'appendonlydir');
  }

  static async start(binary: string, dir: string, extraArgs: readonly string[] = []): Promise<RedisPeer> {
    const port = await freePort();
    const args = [
      ...redisServerArgs(port, dir, 'everysec', ['--auto-aof-rewrite-percentage', '0']),
      ...extraArgs,
    ];
    const proc = spawn(binary, args, { stdio: 'ignore' });
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exited) throw new Error(`redis-server exited at start; see ${join(dir, 'redis.log')}`);
      try {
        const client = await RespClient.connect(port);
        await client.command(['PING']);
        const info = parseInfo(await client.command(['INFO', 'server']));
        return new RedisPeer(dir, port, proc, client, info.get('redis_version') ?? '?');
      } catch (err) {
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          throw err;
        }
        await sleep(50);
      }
    }
  }

  async info(section: string): Promise<Map<string, string>> {
    return parseInfo(await this.client.command(['INFO', section]));
  }

  /** Bytes of every file of the AOF (base, increments, manifest). */
  aofBytes(): number {
    let n = 0;
    for (const f of readdirSync(this.aofDir)) n += statSync(join(this.aofDir, f)).size;
    return n;
  }

  /** Waits until the AOF has been written and fsynced (everysec) and holds no history files. */
  async settle(): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const p = await this.info('persistence');
      const files = readdirSync(this.aofDir);
      if (
        p.get('aof_rewrite_in_progress') === '0' &&
        p.get('aof_rewrite_scheduled') === '0' &&
        p.get('aof_pending_bio_fsync') === '0' &&
        p.get('aof_buffer_length') === '0' &&
        files.length <= 3
      )
        break;
      await sleep(10);
    }
    await sleep(1100); // one everysec tick: the last writes reach the disk
  }

  /** BGREWRITEAOF, polled with INFO persistence every `pollMs`, timed with our own clock. */
  async rewrite(pollMs = 2): Promise<RewriteTiming> {
    const t0 = performance.now();
    await this.client.command(['BGREWRITEAOF']);
    let p: Map<string, string>;
    for (;;) {
      p = await this.info('persistence');
      if (p.get('aof_rewrite_in_progress') === '0' && p.get('aof_rewrite_scheduled') === '0') break;
      await sleep(pollMs);
    }
    const wallMs = performance.now() - t0;
    return {
      wallMs,
      redisSec: Number(p.get('aof_last_rewrite_time_sec') ?? Number.NaN),
      status: p.get('aof_last_bgrewrite_status') ?? '?',
    };
  }

  async stop(): Promise<void> {
    this.client.close();
    await stopProcess(this.proc, 10_000);
  }

  /** For exit hooks: kill at once if still running. */
  killNow(): void {
    killProcess(this.proc);
  }
}

/** SIGTERM `proc` (if still running) and wait for its exit; SIGKILL after `graceMs`. */
export async function stopProcess(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** SIGKILL `proc` at once if it is still running (for exit hooks). */
export function killProcess(proc: ChildProcess): void {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
}
