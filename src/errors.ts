/**
 * The one catalog of segkv errors. Every error carries a stable `code` that also
 * travels on the wire (protocol/PROTOCOL.md lists them); messages say what the
 * user can do about it. Few classes: `KvError` for everything a caller can get,
 * `CorruptionError` when bytes on disk fail their checks (always loud, never
 * turned into "not found").
 */

export type ErrorCode =
  /** The key is empty, too long, or not a string/Buffer. */
  | 'INVALID_KEY'
  /** The value is too large or not a string/Buffer. */
  | 'INVALID_VALUE'
  /** An argument other than key or value is wrong (TTL, batch op, scan option). */
  | 'INVALID_ARGUMENT'
  /** The store (or client) was closed; open it again. */
  | 'CLOSED'
  /** Another process (or this one) already holds the data directory. */
  | 'LOCKED'
  /** Bytes on disk failed a CRC, magic or bounds check. */
  | 'CORRUPTION'
  /** The operating system refused a read, write or fsync. */
  | 'IO_ERROR'
  /** A compaction is already running, or was refused. */
  | 'BUSY';

export class KvError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KvError';
    this.code = code;
  }
}

/** A record, hint, index or header failed its checks. `file` and `position` say where. */
export class CorruptionError extends KvError {
  readonly file: string;
  readonly position: number;

  constructor(file: string, position: number, what: string) {
    super('CORRUPTION', `${what} in ${file} at byte ${position}; run kv-check on the data directory`);
    this.name = 'CorruptionError';
    this.file = file;
    this.position = position;
  }
}

export function closedError(): KvError {
  return new KvError('CLOSED', 'the store is closed; open it again with openStore()');
}

export function ioError(op: string, cause: unknown): KvError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new KvError('IO_ERROR', `${op} failed: ${detail}`, { cause });
}
