/**
 * Opening a client socket to a server, shared by the client's connection and
 * the replication feed: TCP or TLS (the server name sent for a host name,
 * never for an IP address), Nagle off, and destroyed with TIMEOUT when the
 * connection (with its TLS handshake) is not up within `connectTimeoutMs`.
 */
import { isIP, connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { KvError } from '../errors.js';

export interface DialOptions {
  host: string;
  port: number;
  tls?: ConnectionOptions | undefined;
  connectTimeoutMs: number;
}

/**
 * A socket to `o.host:o.port`; `onConnect` runs once it is connected (after
 * the TLS handshake). `onread` (plain TCP only) reads into the caller's buffer.
 */
export function dial(o: DialOptions, onConnect: () => void, onread?: OnReadOpts): Socket {
  const socket = o.tls
    ? tlsConnect({
        host: o.host,
        port: o.port,
        ...(isIP(o.host) === 0 && { servername: o.host }),
        ...o.tls,
      })
    : netConnect({ host: o.host, port: o.port, ...(onread !== undefined && { onread }) });
  socket.setNoDelay(true);
  const timer = setTimeout(() => {
    socket.destroy(
      new KvError('TIMEOUT', `connecting to ${o.host}:${o.port} took over ${o.connectTimeoutMs} ms`),
    );
  }, o.connectTimeoutMs);
  socket.once(o.tls ? 'secureConnect' : 'connect', () => {
    clearTimeout(timer);
    onConnect();
  });
  socket.once('close', () => clearTimeout(timer));
  return socket;
}
