/**
 * Test helper: a KvServer in the test's own process (for tests that reach
 * into it, or serve a MemFs store), on 127.0.0.1, any free port, with no
 * AUTH, TLS or idle timeout unless `options` say otherwise.
 */
import type { Logger } from 'pino';
import type { Store } from '../../src/engine/index.js';
import { KvServer, type ServerOptions } from '../../src/server/server.js';
import { silentLogger } from '../engine/helpers.js';

export function inProcessServer(
  store: Store,
  options: Partial<ServerOptions> = {},
  log: Logger = silentLogger,
): KvServer {
  return new KvServer(
    store,
    {
      host: '127.0.0.1',
      port: 0,
      maxFrameBytes: 1 << 20,
      maxClients: 100,
      idleTimeoutMs: 0,
      password: undefined,
      tls: undefined,
      version: 'test',
      ...options,
    },
    log,
  );
}
