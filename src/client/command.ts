/**
 * One request of the client SDK. A command owns its promise: it encodes
 * itself into a frame, and settles exactly once, from its reply, a timeout,
 * or the loss of its connection.
 */
import { type ErrorCode, KvError } from '../errors.js';
import type { FrameWriter } from '../protocol/frame-writer.js';
import type { CommandName, WireError } from '../protocol/messages.js';

/** A command seen without its result type: what the client's queues hold. */
export interface QueuedCommand {
  /** Writable: the client may send a command under its server's name for it (PTTL for TTL). */
  name: CommandName;
  readonly args: readonly unknown[];
  readonly id: number;
  readonly settled: boolean;
  readonly deadline: number;
  /** Appends the frame `[id, name, ...args]` to `writer`; on error it writes nothing. */
  encode(writer: FrameWriter, id: number): void;
  succeed(raw: unknown): void;
  failWith(error: WireError): void;
  fail(err: unknown): void;
}

export class Command<T = unknown> implements QueuedCommand {
  /** Request id on the wire; set when written. */
  id = -1;
  settled = false;
  readonly promise: Promise<T>;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (err: unknown) => void;
  /** When to reject with TIMEOUT (ms since epoch); Infinity = never. The client sweeps deadlines. */
  deadline = Number.POSITIVE_INFINITY;

  constructor(
    public name: CommandName,
    readonly args: readonly unknown[],
    private readonly transform: (raw: unknown) => T,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }

  /** Appends the frame `[id, name, ...args]` to `writer`; on error it writes nothing. */
  encode(writer: FrameWriter, id: number): void {
    this.id = id;
    writer.frame([id, this.name, ...this.args]);
  }

  /** Settles from a success reply's result. */
  succeed(raw: unknown): void {
    if (this.settled) return;
    let value: T;
    try {
      value = this.transform(raw);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.settled = true;
    this.resolveFn(value);
  }

  /** Settles from an error reply. */
  failWith(error: WireError): void {
    this.fail(wireError(error));
  }

  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }
}

/** A KvError from a wire error object (or a PROTOCOL_ERROR if it is malformed). */
export function wireError(e: unknown): KvError {
  if (typeof e === 'object' && e !== null && typeof (e as WireError).code === 'string') {
    const { code, message } = e as WireError;
    return new KvError(code as ErrorCode, typeof message === 'string' ? message : code);
  }
  return new KvError('PROTOCOL_ERROR', 'the server sent a malformed error object');
}
