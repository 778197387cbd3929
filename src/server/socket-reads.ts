/**
 * How a served socket's bytes reach its connection: read into one buffer
 * shared by every socket (net.Socket's `onread`), instead of Node's default
 * of a fresh 64 KiB allocation per read, shrunk to fit, wrapped and pushed
 * through the Readable stream machinery.
 *
 * Two kinds of sink:
 * - a copying sink (the default: protocol detection, RESP, whose parsed
 *   arguments are views kept by the commands) gets a copy it owns (small
 *   ones share Node's Buffer pool slabs, as Buffer.allocUnsafe does);
 * - a sink that reads views (`views`, the native connection) gets a view of
 *   the shared buffer itself, valid only until its callback returns: before
 *   returning, it must copy whatever it keeps (the unread bytes of a frame
 *   still arriving, ChunkQueue.keep; the request of a command that may keep
 *   part of it). `isReadBuffer` says whether a Buffer is such a view.
 *
 * Invariants:
 * - The shared buffer is only written by a read and only read by the
 *   callback of that same read (one read callback at a time): a view of it
 *   is good until that callback returns.
 * - Pause/resume keep their meaning: with `onread` installed, socket.pause()
 *   stops reading at the handle (libuv readStop), so backpressure holds.
 * - Node does not offer `onread` for accepted sockets, only to the Socket
 *   constructor; it is installed here through the socket's own fields right
 *   after accept, before the first read. When this Node's socket does not
 *   have them (a TLS socket, another Node), the 'data' event is used, with
 *   the same sink and chunks the sink owns: behaviour is the same, only slower.
 *
 * The view of each read is a Buffer kept per read length (READ_VIEWS, the
 * same object again for a later read of the same length), not a fresh
 * subarray: V8 answers a Buffer's `.buffer` (which subarray reads) through
 * a C++ call, about as costly as the rest of a small request's parse, and a
 * view made per read is an allocation per request at pipeline 1. A view is
 * valid only inside the callback anyway, so reuse changes nothing a sink
 * may rely on; `memoryOf` and `isReadBuffer` spare its sinks the getter too
 * (the view delivered last and its memory are a KeptMemory, kept-memory.ts).
 *
 * Everything runs on the event loop: one read callback at a time.
 */
import type { Socket } from 'node:net';
import { KeptMemory } from '../protocol/kept-memory.js';
import { SERVER_READ_BUFFER_BYTES } from '../protocol/limits.js';

/** Where a socket's chunks go; changed when the protocol is detected. */
export type ChunkSink = (chunk: Buffer) => void;

/** The one buffer every socket reads into (its own ArrayBuffer, never a pool slab's), and that ArrayBuffer. */
let shared: Buffer | undefined;
let sharedMemory: ArrayBuffer | undefined;
/** A DataView over all of sharedMemory (readViewOf). */
let sharedView: DataView | undefined;

/** Views of shared[0, n) kept for reuse, by n modulo their count (a workload's few request sizes each keep theirs). */
const READ_VIEWS = 32;
const readViews: (Buffer | undefined)[] = new Array(READ_VIEWS).fill(undefined);

/**
 * The view last delivered to a sink set with `views`, and its memory (the
 * shared buffer's). Not forgotten when its callback returns: it is one of
 * readViews, over memory that lives as long as the process, and every view
 * of that memory is a read buffer anyway (isReadBuffer), so keeping it holds
 * nothing alive and changes no answer, for a store less per read.
 */
const delivered = new KeptMemory();

/** True if `b` is a view of the shared read buffer (valid only inside the read callback that delivered it). */
export function isReadBuffer(b: Uint8Array): boolean {
  return delivered.holds(b) || (sharedMemory !== undefined && b.buffer === sharedMemory);
}

/** `b.buffer`, without the getter's C++ call when `b` is the chunk delivered last (a request read in place). */
export function memoryOf(b: Uint8Array): ArrayBufferLike {
  return delivered.memoryOf(b);
}

/**
 * A DataView over the shared read buffer if `b` is the view delivered last
 * (it starts at the buffer's offset 0, so an index into `b` is the same
 * index into the DataView), else undefined. For a sink that reads a
 * request's bytes by 32-bit words (the server's SET key, get-request.ts's
 * ASCII check): a typed array's byte costs about what a DataView's word
 * does (ARCHITECTURE.md, setView). Valid only inside the read callback, as
 * `b` is.
 */
export function readViewOf(b: Uint8Array): DataView | undefined {
  return delivered.holds(b) ? sharedView : undefined;
}

/** A view of shared[0, n): the one kept for n, or a new one kept in its place. */
function readView(memory: ArrayBuffer, n: number): Buffer {
  const i = n % READ_VIEWS;
  const kept = readViews[i];
  if (kept !== undefined && kept.length === n) return kept;
  const view = Buffer.from(memory, 0, n);
  readViews[i] = view;
  return view;
}

/**
 * Views of places in the shared read buffer, kept by place (PART_VIEWS of
 * them, by a hash of start and length), for the parts of a request a sink
 * hands on to be copied (the server's SET value, copied by the store). A
 * client sending requests of one shape puts their parts at the same places
 * read after read (at pipeline 1, one request from offset 0), so one view
 * serves them all, where a view made per request was the largest
 * allocation left per SET at pipeline 1. Valid only inside the read
 * callback, as the chunk is.
 */
const PART_VIEWS = 64;
const partViews: (Uint8Array | undefined)[] = new Array(PART_VIEWS).fill(undefined);
const partStarts = new Int32Array(PART_VIEWS);
const partLengths = new Int32Array(PART_VIEWS);

/**
 * chunk[start, start + length) as a Uint8Array, for a reader that only
 * copies it before the read callback returns: one kept for that place if
 * `chunk` is the view delivered (a view of the shared buffer), else a new view.
 */
export function partOf(chunk: Uint8Array, start: number, length: number): Uint8Array {
  if (!delivered.holds(chunk)) return new Uint8Array(memoryOf(chunk), chunk.byteOffset + start, length);
  // The delivered view starts at the shared buffer's offset 0 (readView).
  const i = (start + length * 7) & (PART_VIEWS - 1);
  const kept = partViews[i];
  if (kept !== undefined && partStarts[i] === start && partLengths[i] === length) return kept;
  const view = new Uint8Array(sharedMemory!, start, length);
  partViews[i] = view;
  partStarts[i] = start;
  partLengths[i] = length;
  return view;
}

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
  reading?: boolean;
}

/** What a socket needs to deliver its chunks: the sink, switched by setSink. */
interface Delivery {
  sink: ChunkSink;
  /** The sink reads views of the shared buffer (see the header); else it gets copies. */
  views: boolean;
}

const deliveries = new WeakMap<Socket, Delivery>();

/** The socket's private onread fields (Node's lib/net.js), found by their descriptions; undefined if absent. */
function onreadFields(socket: Socket): { buffer: symbol; callback: symbol } | undefined {
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  for (const s of Object.getOwnPropertySymbols(socket)) {
    if (s.description === 'kBuffer') buffer = s;
    else if (s.description === 'kBufferCb') callback = s;
  }
  return buffer !== undefined && callback !== undefined ? { buffer, callback } : undefined;
}

/**
 * Starts delivering `socket`'s chunks to `sink` (call right after accept, in
 * the same tick). True if reads go through the shared buffer, false if
 * through the 'data' event.
 */
export function deliverChunks(socket: Socket, sink: ChunkSink): boolean {
  const delivery: Delivery = { sink, views: false };
  deliveries.set(socket, delivery);
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  const fields = onreadFields(socket);
  if (
    fields === undefined ||
    handle == null ||
    typeof handle.useUserBuffer !== 'function' ||
    (socket as unknown as Record<symbol, unknown>)[fields.buffer] !== null
  ) {
    socket.on('data', (chunk: Buffer) => delivery.sink(chunk));
    return false;
  }
  if (shared === undefined) {
    shared = Buffer.allocUnsafeSlow(SERVER_READ_BUFFER_BYTES);
    sharedMemory = shared.buffer as ArrayBuffer;
    sharedView = new DataView(sharedMemory);
  }
  const memory = sharedMemory!;
  const fieldsOf = socket as unknown as Record<symbol, unknown>;
  fieldsOf[fields.buffer] = shared;
  fieldsOf[fields.callback] = (nread: number) => {
    if (delivery.views) {
      const view = readView(memory, nread);
      delivered.remember(view, memory, 0);
      delivery.sink(view);
      return;
    }
    const chunk = Buffer.allocUnsafe(nread);
    // set() from the kept view: buf.copy would make a view of its own (and read `.buffer`).
    chunk.set(readView(memory, nread));
    delivery.sink(chunk);
  };
  handle.useUserBuffer(shared);
  return true;
}

/**
 * Sends `socket`'s later chunks to `sink` (protocol detection hands the
 * socket to its connection). `views`: the sink may be given views of the
 * shared read buffer, valid until it returns (see the header).
 */
export function setSink(socket: Socket, sink: ChunkSink, views = false): void {
  const delivery = deliveries.get(socket);
  if (delivery !== undefined) {
    delivery.sink = sink;
    delivery.views = views;
  } else {
    // Not accepted through deliverChunks: the socket may be reading already, keep Node's default.
    const own: Delivery = { sink, views: false };
    deliveries.set(socket, own);
    socket.on('data', (chunk: Buffer) => own.sink(chunk));
  }
}
