/**
 * Every size, limit and default of the wire protocol, the server and the
 * client, in one place. Units are in the names: `_BYTES` are bytes, `_MS`
 * milliseconds. protocol/PROTOCOL.md quotes these values; keep them in step.
 */

/** Version of the wire protocol, reported by HELLO. Bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1;

/** Size of a frame's length prefix: uint32 big-endian. */
export const FRAME_HEADER_BYTES = 4;

/** Largest frame body the server accepts by default (`--max-frame-bytes`). Checked on the length prefix. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Smallest and largest allowed `--max-frame-bytes` (a frame must fit one SET of a small value; Buffers stay < 4 GiB). */
export const MIN_MAX_FRAME_BYTES = 1024;
export const MAX_MAX_FRAME_BYTES = 2 ** 32 - 1;

/**
 * Largest frame body the server can send: the length prefix is a uint32.
 * A reply that would be larger (an MGET of many large values) is answered
 * with TOO_LARGE instead, and nothing of it is sent (PROTOCOL.md §2).
 */
export const MAX_REPLY_BYTES = 2 ** 32 - 1;

/** Largest frame a connection may send before AUTH succeeds (when a password is set): enough for AUTH, nothing more. */
export const PREAUTH_MAX_FRAME_BYTES = 1024;

/** Failed AUTH attempts after which the server closes the connection. */
export const MAX_AUTH_FAILURES = 5;

/** Largest request id: ids are uint32, chosen by the client. */
export const MAX_REQUEST_ID = 2 ** 32 - 1;

/** Default bind address and port of kv-server. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 7379;

/** Default cap on simultaneous client connections (Redis's default too). */
export const DEFAULT_MAX_CLIENTS = 10_000;

/** Default idle timeout: 0 = never close an idle connection (Redis's default). */
export const DEFAULT_IDLE_TIMEOUT_MS = 0;

/**
 * kv-server's memory reducer (server/memory-reducer.ts) runs a last-resort
 * GC once nothing was received or logged for this long after work
 * (the default of --idle-gc-ms)...
 */
export const MEMORY_REDUCER_IDLE_MS = 1000;

/** ...and only if V8's heap and external memory grew by this much since its last one. */
export const MEMORY_REDUCER_MIN_GROWTH_BYTES = 8 * 1024 * 1024;

/**
 * Backpressure: a connection stops being read (and stops executing the rest of
 * what it already sent) while its unsent reply bytes exceed this; it resumes
 * when the socket drains below it.
 */
export const REPLY_HIGH_WATER_BYTES = 4 * 1024 * 1024;

/**
 * The one buffer a replica's feed connection reads into (client/feed.ts):
 * the most one read takes from the kernel, as Node's own default read size
 * (the feed's slabs, FEED_SLAB_BYTES, are sized against it).
 */
export const READ_BUFFER_BYTES = 64 * 1024;

/**
 * The one buffer every served socket reads into (server/socket-reads.ts):
 * the most one read takes from the kernel. 256 KiB, not Node's own 64 KiB: a
 * pipelined client's frames larger than a read (kv-bench --prefill's MSETs
 * of ~70 KB) were each split across reads, so each cost a copy of its unread
 * part and a merge (ChunkQueue.keep/merge), ~140 KB of short-lived buffers a
 * frame in the brk heap, where the freed ones stayed resident between live
 * allocations; with 256 KiB reads most frames are read whole, as views. 1M
 * keys (kv-bench --prefill, idle, /proc smaps): 104.3/102.8 MiB against
 * 109.3/112.6 with 64 KiB (ARCHITECTURE.md "Server memory").
 */
export const SERVER_READ_BUFFER_BYTES = 256 * 1024;

/** Backpressure: a connection also stops being read while this many of its requests await an async reply (writes awaiting their ack). */
export const MAX_INFLIGHT_REQUESTS = 8192;

/**
 * Slow-client (slowloris) bound: a frame that has started arriving must be
 * complete within this, or the connection gets fatal TIMEOUT. Progress resets
 * it: any completed frame restarts the clock. 64 MiB needs ≥ 2.2 MB/s.
 */
export const FRAME_TIMEOUT_MS = 30_000;

/** How long a graceful shutdown waits for connections to finish their in-flight requests before cutting them. */
export const SHUTDOWN_GRACE_MS = 10_000;

// ---- change feed (FEED) -------------------------------------------------

/** A feed frame carries about this many bytes of records (at least one record, however large). */
export const FEED_BATCH_BYTES = 256 * 1024;

/**
 * Flow control of a feed: while more than this many bytes of its frames wait
 * unsent (in the connection and the socket), the server reads no more of the
 * log for it; it resumes on 'drain'. A stalled reader costs the server at most
 * this plus one batch, whatever the log holds.
 */
export const FEED_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * A raw feed's frames are written into reused buffers of this size on the
 * server (replication/frame-pool.ts): a FEED_BATCH_BYTES run goes past that
 * by up to its last record, and has its frame head; a frame that does not
 * fit (a run ending in a record over 64 KiB) gets a buffer of its own.
 */
export const FEED_FRAME_BUFFER_BYTES = FEED_BATCH_BYTES + 64 * 1024;

/** Free frame buffers a raw feed keeps: its unsent frames at the high water mark plus two. */
export const FEED_FRAME_BUFFERS = FEED_HIGH_WATER_BYTES / FEED_BATCH_BYTES + 2;

/** A caught-up feed sends an empty frame (with the log's end) this often, so its reader can tell a quiet log from a dead link. */
export const FEED_HEARTBEAT_MS = 1000;

/** The SDK's feed iterator stops reading the socket while this many records wait for the consumer. */
export const FEED_CLIENT_BUFFERED_RECORDS = 10_000;

/**
 * A replica fills its small-value cache from the records it applies only
 * while it serves reads: for this long after the last read it answered
 * (replica.ts). A replica nobody reads from then keeps no values cached,
 * and its apply neither probes nor refills the cache (its CPU per replicated
 * SET 0.85-0.88x in bench:replication's 1-replica row; ARCHITECTURE.md,
 * Replication).
 */
export const REPLICA_CACHE_FILL_MS = 10_000;

/** A raw feed's reader (a replica) stops reading the socket while this many bytes of record runs wait to be applied. */
export const FEED_CLIENT_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * A raw feed's reader assembles frames in reused slabs of this many bytes
 * (client/slab-frames.ts): four frames of FEED_FRAME_BUFFER_BYTES; a frame
 * larger than a slab gets a buffer of its own.
 */
export const FEED_SLAB_BYTES = 4 * FEED_FRAME_BUFFER_BYTES;

/**
 * Slabs a raw feed's reader keeps for reuse: what FEED_CLIENT_BUFFERED_BYTES
 * of waiting frames fill, plus the one arriving and one held.
 */
export const FEED_FREE_SLABS = Math.ceil(FEED_CLIENT_BUFFERED_BYTES / (4 * FEED_BATCH_BYTES)) + 2;

/** Default of --min-replicas-timeout-ms: how long a write waits for its replica acknowledgements. */
export const DEFAULT_MIN_REPLICAS_TIMEOUT_MS = 10_000;

/** Largest WAIT numreplicas and --min-replicas-ack (more replicas than anyone runs). */
export const MAX_REPLICAS = 1024;

// ---- client SDK ---------------------------------------------------------

/** Default time a client waits for a reply before rejecting with TIMEOUT; 0 disables. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Default time a client waits for the TCP/TLS connection to open before treating the attempt as failed. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Default time a client waits, once the socket is open, for the server's
 * answer to HELLO (the handshake that proves the peer is a segkv server)
 * before it gives the attempt up as "not a segkv server".
 */
export const DEFAULT_HELLO_TIMEOUT_MS = 2_000;

/**
 * Largest reply frame accepted during the handshake: a HELLO reply is a few
 * hundred bytes, so a longer length prefix (e.g. "HTTP", "-ERR" or a TLS
 * record read as a length) means the peer is not a segkv server, at once.
 */
export const HANDSHAKE_MAX_REPLY_BYTES = 64 * 1024;

/** Reconnect backoff: first delay, doubling up to the max. */
export const DEFAULT_RETRY_MIN_DELAY_MS = 50;
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;

/** Commands a client holds while disconnected; beyond this new commands are rejected at once. */
export const DEFAULT_OFFLINE_QUEUE_LIMIT = 10_000;

/** Largest reply frame the client accepts by default (an MGET reply may exceed the server's request limit). */
export const DEFAULT_CLIENT_MAX_REPLY_BYTES = 1024 * 1024 * 1024;

// ---- RESP (Redis clients on the same port; src/resp/) -------------------

/** Longest inline command line, and longest `*count` / `$length` line, bytes (Redis's PROTO_INLINE_MAX_SIZE). */
export const RESP_MAX_INLINE_BYTES = 64 * 1024;

/** Most arguments in one RESP request (Redis allows up to 2^31-1; the request size limit binds long before). */
export const RESP_MAX_ARGS = 1024 * 1024;

/** Most arguments in one RESP request before AUTH succeeds (Redis's limit too). */
export const RESP_PREAUTH_MAX_ARGS = 10;

/**
 * A connection refused for --max-clients is answered in its own protocol: the
 * server waits this long for its first byte (Redis clients speak first), then
 * sends the native MAX_CLIENTS frame.
 */
export const REFUSAL_FIRST_BYTE_WAIT_MS = 500;

/** SCAN's default COUNT in RESP (Redis's). */
export const RESP_DEFAULT_SCAN_COUNT = 10;

/**
 * RESP SCAN cursors are integers (redis-py and redis-cli parse them), but a
 * segkv scan resumes after a key: the server maps each cursor it hands out to
 * that key, keeping the newest this many...
 */
export const RESP_SCAN_CURSORS = 100_000;

/** ...and at most this many bytes of their keys; an evicted cursor answers `ERR invalid cursor`. */
export const RESP_SCAN_CURSOR_BYTES = 32 * 1024 * 1024;

/**
 * Requests the native server looks ahead at in a received batch to warm the
 * keydir for their keys (connection.ts lookAhead): GETs and SETs in the same
 * read, so their memory misses overlap instead of each lookup waiting alone.
 */
export const LOOKAHEAD_FRAMES = 64;

/**
 * A RESP request with more arguments than this ends the look-ahead over a
 * batch (src/resp/parser.ts keysAhead): a GET has 2, a SET with every
 * option about 6; larger ones (MSET, DEL of many keys) are not warmed.
 */
export const LOOKAHEAD_MAX_ARGS = 8;
