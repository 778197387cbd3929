/**
 * How a served socket's bytes reach its connection: read into one buffer
 * shared by every socket (net.Socket's `onread`), then copied into a Buffer
 * the connection owns, instead of Node's default of a fresh 64 KiB
 * allocation per read, shrunk to fit, wrapped and pushed through the
 * Readable stream machinery.
 *
 * Invariants:
 * - A chunk handed to a sink is the sink's: it is a copy (small ones share
 *   Node's Buffer pool slabs, as Buffer.allocUnsafe does), never a view of
 *   the shared read buffer, so a request view kept past its callback (an
 *   awaited write, the slow log, a cache) stays intact. The shared buffer is
 *   only written by a read and only read by the callback of that same read.
 * - Pause/resume keep their meaning: with `onread` installed, socket.pause()
 *   stops reading at the handle (libuv readStop), so backpressure holds.
 * - Node does not offer `onread` for accepted sockets, only to the Socket
 *   constructor; it is installed here through the socket's own fields right
 *   after accept, before the first read. When this Node's socket does not
 *   have them (a TLS socket, another Node), the 'data' event is used, with
 *   the same sink: behaviour is the same, only slower.
 *
 * Everything runs on the event loop: one read callback at a time.
 */
import type { Socket } from 'node:net';
import { READ_BUFFER_BYTES } from '../protocol/limits.js';

/** Where a socket's chunks go; changed when the protocol is detected. */
export type ChunkSink = (chunk: Buffer) => void;

/** The one buffer every socket reads into; each read is copied out in its callback. */
let shared: Buffer | undefined;

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
  reading?: boolean;
}

/** What a socket needs to deliver its chunks: the sink, switched by setSink. */
interface Delivery {
  sink: ChunkSink;
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
  const delivery: Delivery = { sink };
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
  shared ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const fieldsOf = socket as unknown as Record<symbol, unknown>;
  fieldsOf[fields.buffer] = shared;
  fieldsOf[fields.callback] = (nread: number, buf: Buffer) => {
    const chunk = Buffer.allocUnsafe(nread);
    buf.copy(chunk, 0, 0, nread);
    delivery.sink(chunk);
  };
  handle.useUserBuffer(shared);
  return true;
}

/** Sends `socket`'s later chunks to `sink` (protocol detection hands the socket to its connection). */
export function setSink(socket: Socket, sink: ChunkSink): void {
  const delivery = deliveries.get(socket);
  if (delivery !== undefined) delivery.sink = sink;
  else {
    // Not accepted through deliverChunks: the socket may be reading already, keep Node's default.
    const own: Delivery = { sink };
    deliveries.set(socket, own);
    socket.on('data', (chunk: Buffer) => own.sink(chunk));
  }
}
