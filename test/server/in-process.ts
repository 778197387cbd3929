/**
 * Test helper: a KvServer in the test's own process (for tests that reach
 * into it, or serve a MemFs store), on 127.0.0.1, any free port, with no
 * AUTH, TLS or idle timeout unless `options` say otherwise.
 */
import type { Logger } from 'pino';
import { openStore, type Store, type StoreOptions } from '../../src/engine/index.js';
import { MemFs } from '../../src/engine/mem-fs.js';
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

/** A store on an in-memory file system behind an in-process server (memServer). */
export interface MemServer {
  mem: MemFs;
  store: Store;
  server: KvServer;
  port: number;
}

/**
 * A MemFs store at `dir` behind an in-process server that is listening, for
 * tests that fail or hold the store's file operations (MemFs.failWrites,
 * holdFsyncs) while a client pipelines against it. Compaction is off unless
 * `options` say otherwise.
 */
export async function memServer(dir: string, options: StoreOptions = {}): Promise<MemServer> {
  const mem = new MemFs();
  const store = await openStore(dir, {
    fs: mem,
    logger: silentLogger,
    compaction: { auto: false },
    ...options,
  });
  const server = inProcessServer(store);
  const { port } = await server.listen();
  return { mem, store, server, port };
}
