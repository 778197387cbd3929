/**
 * Why a connection attempt failed, in words a user can act on: the
 * CONNECTION_FAILED errors of the client's handshake. A peer that is not a
 * segkv server is named by what it sent (a TLS record, an HTTP or RESP
 * reply, or silence), and every message says what to pass instead — the
 * client option and kv-cli's flag.
 */
import { KvError } from '../errors.js';
import type { ResolvedClientOptions } from './options.js';

type Where = Pick<ResolvedClientOptions, 'host' | 'port' | 'tls'>;

/** Longest excerpt of a peer's bytes quoted in a message. */
const PREVIEW_BYTES = 40;

function address(o: Where): string {
  return `${o.host}:${o.port}`;
}

/** What a peer's first bytes look like. */
function describeBytes(bytes: Buffer, o: Where): string {
  const b0 = bytes[0];
  if ((b0 === 0x15 || b0 === 0x16) && bytes[1] === 0x03) {
    return o.tls
      ? 'it sent a TLS record inside TLS'
      : 'it speaks TLS: connect with the tls option (kv-cli --tls, and --cacert FILE or --insecure for a self-signed certificate)';
  }
  const text = bytes.subarray(0, PREVIEW_BYTES).toString('latin1');
  const line = JSON.stringify(text.split('\r\n')[0]);
  if (text.startsWith('HTTP/')) return `it is an HTTP server (it answered ${line})`;
  if (b0 !== undefined && '+-:$*%_#,(=>~|'.includes(String.fromCharCode(b0))) {
    return `it answers in RESP, as Redis does (${line}); segkv's own protocol is what the SDK and kv-cli speak`;
  }
  return `it answered ${bytes.subarray(0, PREVIEW_BYTES).toString('hex')}`;
}

/** CONNECTION_FAILED for a peer that did not answer HELLO at all: Redis reads our frame as an unfinished inline command. */
export function silentPeer(o: Where, ms: number): KvError {
  return notSegkv(
    o,
    `it sent no reply to HELLO within ${ms} ms (a Redis server, for one, waits silently: use a Redis client there)`,
  );
}

export function notSegkv(o: Where, what: Buffer | string): KvError {
  const why = typeof what === 'string' ? what : describeBytes(what, o);
  return new KvError('CONNECTION_FAILED', `${address(o)} is not a segkv server: ${why}`);
}

const UNTRUSTED_CERT = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** CONNECTION_FAILED for an attempt that ended before HELLO was answered (`err`: the socket's error, if any). */
export function connectFailure(o: Where, err: Error | undefined): KvError {
  const at = address(o);
  if (err instanceof KvError && err.code === 'CONNECTION_FAILED') return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let message: string;
  if (err === undefined) {
    message = o.tls
      ? `${at} closed the connection during the TLS handshake: it may not speak TLS (connect without tls; kv-cli without --tls)`
      : `${at} closed the connection before answering HELLO: it may be a TLS server (connect with the tls option; kv-cli --tls) or not a segkv server`;
  } else if (code === 'ECONNREFUSED') {
    message = `cannot connect to ${at}: ${err.message} (is kv-server running and listening on port ${o.port}?)`;
  } else if (o.tls && code !== undefined && UNTRUSTED_CERT.has(code)) {
    message =
      `the TLS certificate of ${at} is not trusted (${err.message}): pass its CA with tls: { ca } ` +
      '(kv-cli --cacert FILE), or skip the check with tls: { rejectUnauthorized: false } (kv-cli --insecure)';
  } else if (
    o.tls &&
    (code?.startsWith('ERR_SSL_') || code === 'ECONNRESET' || /SSL|TLS/.test(err.message))
  ) {
    // OpenSSL's message is a multi-line dump; its `reason` says it in words.
    const reason = (err as { reason?: unknown }).reason;
    const detail = typeof reason === 'string' ? reason : (err.message.split('\n')[0] ?? err.message);
    message =
      `the TLS handshake with ${at} failed (${detail}): the server does not seem to speak TLS; ` +
      'connect without tls (kv-cli without --tls)';
  } else if (!o.tls && code === 'ECONNRESET') {
    message =
      `${at} reset the connection before answering HELLO (${err.message}): it may be a TLS server ` +
      '(connect with the tls option; kv-cli --tls) or not a segkv server';
  } else {
    message = `cannot connect to ${at}: ${err.message}`;
  }
  return new KvError('CONNECTION_FAILED', message, { cause: err });
}
