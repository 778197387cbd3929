/**
 * How a served socket's replies reach the kernel: straight through the
 * socket's handle (libuv's try-write, one `write` system call), instead of
 * net.Socket's Writable machinery, which for every write builds a write
 * request object, keeps stream state, and schedules a callback tick.
 *
 * Invariants:
 * - Order: a direct write is issued only while the Writable holds nothing
 *   (`writableLength === 0`, not corked, not ending). libuv keeps the order
 *   of everything after it: a direct write the kernel did not take whole is
 *   queued in libuv, and any later write, direct or through the stream,
 *   finds that queue non-empty and lines up behind it.
 * - A write the kernel refuses at once (EPIPE, ECONNRESET) wrote nothing, so
 *   it is handed to `socket.write`, which fails the same way and lets Node
 *   close the socket as usual.
 * - A write libuv queued (the kernel took only part) keeps its buffer alive
 *   on its request until libuv calls `oncomplete`; the socket's `pending`
 *   counts those bytes (backpressure) and `done` is called when they are
 *   written (what 'drain' says for the stream), or the socket is destroyed
 *   if the write failed.
 * - Node does not offer this for user code: the handle's `writeBuffer` and
 *   the request class come from the `stream_wrap` binding. When this Node
 *   does not have them, or the socket is not plain TCP (TLS), every write
 *   goes through `socket.write`: behaviour is the same, only slower.
 * - A reply handed over as a place in memory (`writeFrom`, the usual reply
 *   at pipeline 1) is copied into the stage, one buffer shared by every
 *   socket, and written through a view of it kept per length: no Buffer is
 *   made per reply (it was the largest allocation per request there, and
 *   the scavenges that allocation brings stall a whole round of clients).
 *   The stage is reused only after a write the kernel took whole; a write
 *   libuv queued keeps it, and the next write gets a fresh one.
 *
 * Everything runs on the event loop.
 */
import type { Socket } from 'node:net';
import { copyMemory } from '../protocol/memory-copy.js';

interface WriteRequest {
  handle: unknown;
  buffer: Buffer | null;
  oncomplete: ((status: number) => void) | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

interface WritableHandle {
  writeBuffer?: (req: WriteRequest, buf: Buffer) => number;
}

/** Node's stream_wrap binding, or undefined where it is not there (another Node, a runtime without it). */
function streamWrap(): StreamWrapBinding | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as
      | Partial<StreamWrapBinding>
      | undefined;
    if (
      binding === undefined ||
      typeof binding.WriteWrap !== 'function' ||
      !(binding.streamBaseState instanceof Int32Array) ||
      typeof binding.kLastWriteWasAsync !== 'number'
    )
      return undefined;
    return binding as StreamWrapBinding;
  } catch {
    return undefined;
  }
}

const binding = streamWrap();

/** Replies up to this size are copied into the stage to be written (writeFrom); a larger one gets a view of its own. */
export const STAGE_BYTES = 16 * 1024;

/** The stage (see the header), made at the first use, and its views kept per length, by length modulo their count. */
let stage: ArrayBuffer | undefined;
/** A DataView of the stage, made with it (copySmall writes through it). */
let stageData: DataView | undefined;
const STAGE_VIEWS = 32;
const stageViews: (Buffer | undefined)[] = new Array(STAGE_VIEWS).fill(undefined);

/** stage[0, n) as a Buffer: the one kept for n, or a new one kept in its place. */
function stageView(memory: ArrayBuffer, n: number): Buffer {
  const i = n % STAGE_VIEWS;
  const kept = stageViews[i];
  if (kept !== undefined && kept.length === n) return kept;
  const view = Buffer.from(memory, 0, n);
  stageViews[i] = view;
  return view;
}

/**
 * Replies up to this size (a SET's or DEL's reply is ~10 bytes) are copied
 * into the stage by copySmall, in JS, and larger ones by copyMemory: its
 * call into C++ (the binding's argument checks, the call's handle scope)
 * costs ~400 instructions whatever the size, where copySmall costs ~8 an
 * input byte (each DataView access checks its buffer and bounds): ~1,000 for
 * a 115-byte GET reply, measured with callgrind.
 */
const SMALL_COPY_BYTES = 32;

/**
 * A DataView of the memory copySmall last copied from, and that memory:
 * replies come from the shared writer's current buffer, so it is made
 * again only when the writer moves to a fresh buffer. It keeps at most one
 * such buffer (64 KiB) alive after the writer has left it.
 */
let source: ArrayBufferLike | undefined;
let sourceData: DataView | undefined;

/** Copies memory[start, start + n) to stage[0, n) by 32-bit words, then bytes (n <= SMALL_COPY_BYTES); DataView's checks throw a RangeError for a range outside memory. */
function copySmall(to: DataView, memory: ArrayBufferLike, start: number, n: number): void {
  if (memory !== source) {
    sourceData = new DataView(memory);
    source = memory;
  }
  const from = sourceData!;
  let i = 0;
  for (; i + 4 <= n; i += 4) to.setUint32(i, from.getUint32(start + i, true), true);
  for (; i < n; i++) to.setUint8(i, from.getUint8(start + i));
}

/** A queued write holds the stage: later writes get a fresh one. */
function leaveStage(): void {
  stage = undefined;
  stageData = undefined;
  stageViews.fill(undefined);
}

/**
 * A write request for writes the kernel takes whole: those never reach
 * libuv's queue, so one request object serves them all; one that is queued
 * keeps its request and a fresh one is made for the next.
 */
let spare: WriteRequest | undefined;

/** One socket's direct writes: what libuv still holds of them. */
export class SocketWrites {
  /** Bytes of direct writes queued in libuv, not yet handed to the kernel. */
  pending = 0;
  /** Writes may go straight through the handle (plain TCP on a Node that has the binding). */
  readonly direct: boolean;
  /**
   * The socket's handle, read once: on Node 20 `socket._handle` is a getter
   * whose keyed load of a symbol is megamorphic (one stub-cache lookup,
   * ~190 instructions, per reply at pipeline 1). Node replaces a served
   * socket's handle only when it destroys the socket (it sets it to null
   * then), so while `destroyed` is false this is still the socket's handle.
   */
  private readonly handle: WritableHandle | undefined;

  /** @param done called when every queued direct write has been written */
  constructor(
    private readonly socket: Socket,
    private readonly done: () => void,
  ) {
    const handle = (socket as unknown as { _handle?: WritableHandle | null })._handle;
    this.direct =
      binding !== undefined &&
      (socket as { encrypted?: boolean }).encrypted !== true &&
      handle != null &&
      typeof handle.writeBuffer === 'function';
    this.handle = this.direct ? handle! : undefined;
  }

  /** Bytes written and not yet handed to the kernel, by either path. */
  get queued(): number {
    return this.socket.writableLength + this.pending;
  }

  /** Writes `buf` (never written again by the caller). */
  write(buf: Buffer): void {
    const handle = this.directHandle();
    if (handle === undefined) this.socket.write(buf);
    else this.writeDirect(handle, buf, false);
  }

  /**
   * Writes memory[start, start + length): through the stage when it is small
   * and the write can go straight through the handle, else as a view of its
   * own. Returns true when it was copied (the caller may write there again),
   * false when the view is written (never write there again).
   */
  writeFrom(memory: ArrayBufferLike, start: number, length: number): boolean {
    const handle = this.directHandle();
    if (handle === undefined || length > STAGE_BYTES) {
      this.write(Buffer.from(memory, start, length));
      return false;
    }
    if (stage === undefined) {
      stage = new ArrayBuffer(STAGE_BYTES);
      stageData = new DataView(stage);
    }
    if (length <= SMALL_COPY_BYTES) copySmall(stageData!, memory, start, length);
    else copyMemory(stage, 0, memory, start, length);
    this.writeDirect(handle, stageView(stage, length), true);
    return true;
  }

  /** The socket's handle if a write may go straight through it now (see the header's order invariant), else undefined. */
  private directHandle(): WritableHandle | undefined {
    const socket = this.socket;
    const handle = this.handle;
    if (
      handle === undefined ||
      socket.destroyed ||
      socket.writableLength !== 0 ||
      socket.writableCorked !== 0 ||
      socket.writableEnded ||
      socket.connecting
    )
      return undefined;
    return handle;
  }

  /** One write through the handle; `staged`: buf is a view of the stage. */
  private writeDirect(handle: WritableHandle, buf: Buffer, staged: boolean): void {
    const socket = this.socket;
    const req = spare ?? new binding!.WriteWrap();
    spare = req;
    const err = handle.writeBuffer!(req, buf);
    if (err !== 0) {
      // Nothing was written: let the stream report it the usual way (with bytes of its own, not the stage).
      socket.write(staged ? Buffer.from(buf) : buf);
      return;
    }
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) return;
    // libuv queued the rest: this request is now that write's, and so is the stage if it was written from there.
    spare = undefined;
    if (staged) leaveStage();
    this.track(req, buf);
  }

  /** Counts a write libuv queued until it completes (apart from writeDirect: its closure would cost that a context per call). */
  private track(req: WriteRequest, buf: Buffer): void {
    const socket = this.socket;
    const bytes = buf.length;
    this.pending += bytes;
    req.buffer = buf;
    req.oncomplete = (status: number) => {
      req.buffer = null;
      req.oncomplete = null;
      this.pending -= bytes;
      if (socket.destroyed) return;
      if (status < 0) {
        socket.destroy(new Error(`write failed (libuv status ${status})`));
        return;
      }
      if (this.pending === 0) this.done();
    };
  }
}
