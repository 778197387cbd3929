/**
 * The interactive kv-cli, on node:readline. On a terminal: the prompt names
 * the server (`127.0.0.1:7379> `, `not connected> ` while it is down),
 * history persists (history.ts), TAB completes and a dim hint shows the
 * arguments (completion.ts, hint-renderer.ts). With stdin not a terminal
 * the same loop runs the lines it reads, without prompt or hints.
 *
 * Lines run one at a time, in order; lines typed meanwhile wait. The SDK
 * client reconnects in the background; a command typed while it is down
 * waits up to RECONNECT_WAIT_MS for it (a probe PING), then reports the
 * server unreachable, so a command is never held back to run later.
 * Ctrl-C abandons a command still waiting for its reply (the server may
 * still apply it), clears a half-typed line, or leaves on an empty one.
 * With -c a MOVED reply moves the session to the node it names (redirect.ts).
 */
import { createInterface, type Interface } from 'node:readline';
import { EXIT_OK } from '../lib/cli.js';
import { runCommand } from './commands.js';
import { compactionWatcher } from './compact-progress.js';
import { complete } from './completion.js';
import { address, type CliClient, ConnectionWatch, cannotConnect, openClient } from './connection.js';
import { helpText } from './help.js';
import { HintRenderer } from './hint-renderer.js';
import { HISTORY_MAX, History, historyPath } from './history.js';
import type { CliOptions } from './options.js';
import { QuoteError, splitArgs } from './quoting.js';
import { MAX_REDIRECTS, type Redirect, redirectLine, redirectOf } from './redirect.js';
import { formatHuman, render } from './reply.js';

/** How long a command waits for a lost connection to come back, ms. */
export const RECONNECT_WAIT_MS = 1500;
/** How long leaving (Ctrl-D, Ctrl-C, quit) waits for the client to close politely, ms. */
const CLOSE_WAIT_MS = 1000;
/** Largest count of redis-cli's repeat prefix (`5 ping`). */
const MAX_REPEAT = 1_000_000;

const INTERRUPTED = Symbol('interrupted');

/** The prompt for a server address and connection state. */
export function promptFor(o: Pick<CliOptions, 'host' | 'port'>, connected: boolean): string {
  return connected ? `${address(o)}> ` : 'not connected> ';
}

function delay(ms: number): Promise<'timeout'> {
  return new Promise((r) => setTimeout(() => r('timeout'), ms).unref());
}

export class Repl {
  private client: CliClient;
  private watch: ConnectionWatch;
  private readonly rl: Interface;
  private readonly history: History;
  private readonly interactive: boolean;
  private readonly hints: HintRenderer | undefined;
  private readonly queue: string[] = [];
  private busy = false;
  /** The first connection attempt is over: the prompt may be drawn. */
  private started = false;
  private inputEnded = false;
  private quitting = false;
  private interrupt: (() => void) | undefined;
  private finished!: () => void;
  readonly done: Promise<void>;

  constructor(
    private readonly o: CliOptions,
    private readonly version: string,
    input: NodeJS.ReadStream = process.stdin,
    private readonly output: NodeJS.WriteStream = process.stdout,
  ) {
    this.done = new Promise((r) => {
      this.finished = r;
    });
    this.interactive = input.isTTY === true && output.isTTY === true;
    this.history = new History(historyPath());
    const saved = this.history.load();
    this.client = this.newClient();
    this.watch = new ConnectionWatch(this.client);
    this.rl = createInterface({
      input,
      output,
      terminal: this.interactive,
      historySize: HISTORY_MAX,
      history: saved.reverse(),
      ...(this.interactive && { completer: complete }),
      prompt: promptFor(o, false),
    });
    this.hints =
      this.interactive && process.env.TERM !== 'dumb' ? new HintRenderer(this.rl, output) : undefined;
    this.hints?.attach(input);
    this.rl.on('line', (line) => {
      this.queue.push(line);
      void this.pump();
    });
    this.rl.on('close', () => {
      // Ctrl-D or Ctrl-C at the prompt: end the prompt's line, as redis-cli does, so the shell's
      // prompt does not follow ours on the same line. (QUIT's Enter already ended it, and while a
      // command runs no prompt is shown.)
      if (this.interactive && this.started && !this.quitting && !this.busy && this.queue.length === 0) {
        this.hints?.clear();
        this.write('\n');
      }
      this.inputEnded = true;
      void this.pump();
    });
    this.rl.on('SIGINT', () => this.onInterrupt());
  }

  private newClient(password = this.o.password): CliClient {
    const client = openClient({ ...this.o, password });
    client.on('connect', () => this.refreshPrompt());
    client.on('close', () => this.refreshPrompt());
    return client;
  }

  private get connected(): boolean {
    return this.client.status === 'ready';
  }

  /** Shows the prompt again if it changed while idle (connection lost or back). */
  private refreshPrompt(): void {
    const prompt = promptFor(this.o, this.connected);
    if (!this.started || !this.interactive || this.busy || this.quitting || this.inputEnded) return;
    if (this.rl.getPrompt() === prompt) return;
    this.hints?.clear();
    this.rl.setPrompt(prompt);
    this.rl.prompt(true);
  }

  /** Shows the prompt; text typed ahead stays, with the cursor where it was. */
  private prompt(): void {
    if (!this.interactive || this.quitting) return;
    this.rl.setPrompt(promptFor(this.o, this.connected));
    this.rl.prompt(true);
  }

  private write(text: string | Buffer): void {
    this.output.write(text);
  }

  /** Starts: waits briefly for the first connection, then shows the prompt. */
  async start(): Promise<number> {
    const first = await this.reachable();
    // Left (Ctrl-D) during the wait: the client was closed on purpose, nothing to report.
    if (first !== true && !this.finishing) this.write(`${first}\n`);
    this.started = true;
    if (this.queue.length === 0 && !this.inputEnded && !this.busy) this.prompt();
    await this.done;
    return EXIT_OK;
  }

  /** true when connected (waiting up to RECONNECT_WAIT_MS), else the message to print. */
  private async reachable(): Promise<true | string> {
    if (this.client.status === 'closed') {
      this.client = this.newClient();
      this.watch = new ConnectionWatch(this.client);
    }
    if (this.connected) return true;
    // A probe: PING is harmless if it goes out after we stopped waiting.
    const probe = this.client.ping().then(
      () => true as const,
      (err: unknown) => err,
    );
    const r = await Promise.race([probe, delay(RECONNECT_WAIT_MS)]);
    if (r === true) return true;
    if (r === 'timeout' || (r as { code?: string }).code === 'CLOSED') {
      return cannotConnect(this.o, this.watch.lastError ?? 'no answer');
    }
    return formatHuman({
      type: 'error',
      code: (r as { code?: string }).code ?? 'ERR',
      message: String((r as Error).message),
    });
  }

  private onInterrupt(): void {
    if (this.interrupt) {
      this.interrupt();
      return;
    }
    if (this.rl.line.length > 0) {
      this.hints?.clear();
      this.write('^C\n');
      this.rl.write(null, { ctrl: true, name: 'e' });
      this.rl.write(null, { ctrl: true, name: 'u' });
      this.prompt();
      return;
    }
    this.rl.close();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    while (this.queue.length > 0 && !this.quitting) {
      const line = this.queue.shift()!;
      if ((await this.handle(line)) === 'quit') {
        this.quitting = true;
        this.rl.close();
      }
    }
    this.busy = false;
    if (this.inputEnded || this.quitting) await this.finish();
    else this.prompt();
  }

  private finishing = false;

  private async finish(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    this.hints?.clear();
    // Leaving never waits on the server: a peer that does not answer QUIT is cut off.
    await Promise.race([this.client.close(), delay(CLOSE_WAIT_MS)]);
    this.finished();
  }

  /** Runs one line; 'quit' to leave. */
  private async handle(line: string): Promise<'quit' | undefined> {
    let args: Buffer[];
    try {
      args = splitArgs(line);
    } catch (err) {
      if (err instanceof QuoteError) {
        this.write(`${err.message}\n`);
        return undefined;
      }
      throw err;
    }
    if (args.length === 0) return undefined;
    this.history.add(line);

    // redis-cli's repeat prefix: `3 incr counter`.
    let times = 1;
    const first = args[0]!.toString('utf8');
    if (/^[1-9]\d*$/.test(first) && args.length > 1) {
      times = Math.min(Number(first), MAX_REPEAT);
      args = args.slice(1);
    }
    const name = args[0]!.toString('utf8').toUpperCase();
    switch (name) {
      case 'QUIT':
      case 'EXIT':
        return 'quit';
      case 'HELP':
        this.write(helpText(args[1]?.toString('utf8'), this.version));
        return undefined;
      case 'CLEAR':
        if (this.interactive) this.write('\x1b[H\x1b[2J');
        return undefined;
      case 'AUTH':
        await this.auth(args);
        return undefined;
    }
    for (let i = 0; i < times; i++) {
      if (!(await this.runServerCommand(args))) break;
    }
    return undefined;
  }

  /** Runs one server command and prints its reply; false if interrupted or unreachable. */
  private async runServerCommand(args: Buffer[]): Promise<boolean> {
    // Ctrl-C abandons the command, while it waits for the connection as well as for its reply.
    const interrupted = new Promise<typeof INTERRUPTED>((r) => {
      this.interrupt = () => r(INTERRUPTED);
    });
    try {
      const ok = await Promise.race([this.reachable(), interrupted]);
      if (ok === INTERRUPTED) {
        this.write('(interrupted)\n');
        return false;
      }
      if (ok !== true) {
        this.write(`${ok}\n`);
        return false;
      }
      for (let hops = 0; ; hops++) {
        const watchCompaction = compactionWatcher(this.o, process.stderr);
        const reply = runCommand({ client: this.client, ...(watchCompaction && { watchCompaction }) }, args);
        const r = await Promise.race([reply, interrupted]);
        if (r === INTERRUPTED) {
          this.write('(interrupted: the reply is dropped; the server may still apply the command)\n');
          return false;
        }
        const to = this.o.cluster && hops < MAX_REDIRECTS ? redirectOf(r) : undefined;
        if (to === undefined) {
          this.write(render(r, this.o.output));
          return true;
        }
        // -c: say so, move to the node that owns the slot, and send the command again there.
        this.write(redirectLine(to));
        const ready = await Promise.race([this.moveTo(to), interrupted]);
        if (ready === INTERRUPTED) {
          this.write('(interrupted)\n');
          return false;
        }
        if (ready !== true) {
          this.write(`${ready}\n`);
          return false;
        }
      }
    } finally {
      this.interrupt = undefined;
    }
  }

  /** -c: connects to the node a MOVED named (the prompt follows); true once it answers, else the message. */
  private async moveTo(to: Redirect): Promise<true | string> {
    const old = this.client;
    this.o.host = to.host;
    this.o.port = to.port;
    this.client = this.newClient();
    this.watch = new ConnectionWatch(this.client);
    void Promise.race([old.close(), delay(CLOSE_WAIT_MS)]);
    return this.reachable();
  }

  /** AUTH: reconnects with the password, keeping the old session if it is refused. */
  private async auth(args: Buffer[]): Promise<void> {
    if (args.length !== 2) {
      this.write(formatHuman({ type: 'error', code: 'WRONG_ARGS', message: 'usage: AUTH password' }) + '\n');
      return;
    }
    const password = args[1]!.toString('utf8');
    const candidate = this.newClient(password);
    const watch = new ConnectionWatch(candidate);
    const probe = candidate.ping().then(
      () => true as const,
      (err: unknown) => err,
    );
    const r = await Promise.race([probe, delay(RECONNECT_WAIT_MS)]);
    if (r !== true) {
      void candidate.close();
      const code = (r as { code?: string }).code;
      this.write(
        r === 'timeout' || code === 'CLOSED'
          ? `${cannotConnect(this.o, watch.lastError ?? 'no answer')}\n`
          : `${formatHuman({ type: 'error', code: code ?? 'ERR', message: (r as Error).message })}\n`,
      );
      return;
    }
    const old = this.client;
    this.client = candidate;
    this.watch = watch;
    this.o.password = password;
    void old.close();
    this.write('OK\n');
  }
}

/**
 * Runs the REPL; once it is over (quit, Ctrl-D, Ctrl-C on an empty line) the
 * process exits with its status as soon as stdout is flushed, as redis-cli
 * does, whatever a socket or the terminal still holds open.
 */
export async function runRepl(o: CliOptions, version: string): Promise<number> {
  const code = await new Repl(o, version).start();
  process.stdout.write('', () => process.exit(code));
  return code;
}
