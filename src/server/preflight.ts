/**
 * What kv-server checks before it opens the store, so that a mistake in the
 * setup is one line naming the setting, the path or address and what to do
 * (exit 2), never a stack trace, and nothing is created on the way to it.
 *
 * Order: the ports first (bound and let go at once), then the data
 * directory (created if missing, then it must be a directory this user may
 * read and write, with a LOCK that can be opened). Only then does main.ts
 * open the store and, after recovery, bind the port for real: clients never
 * see a half-loaded keydir, and during recovery the port refuses
 * connections (as before the check). A process that takes the port during
 * recovery still makes the real bind fail, with the same message.
 */
import {
  accessSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { LOCK_FILE } from '../engine/filenames.js';

/** A setup problem: the message names the setting and says what to fix. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** Why binding `host:port` failed, as one line naming `flag` (`--port` or `--metrics-port`). */
export function listenProblem(flag: string, host: string, port: number, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return `${flag} ${port}: ${where} is already in use by another process; stop it, or choose another ${flag}`;
    case 'EACCES':
      return `${flag} ${port}: this user may not bind ${where} (ports below 1024 need privileges); choose a port from 1024 up`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `--host ${host}: no network interface of this machine has that address; give one it has (127.0.0.1, 0.0.0.0 for all)`;
    default:
      return `${flag} ${port}: cannot listen on ${where}: ${(err as Error).message}`;
  }
}

/** Binds `host:port` and lets go at once; throws SetupError if it cannot be bound. Port 0 checks the host. */
export async function checkPort(flag: string, host: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err) => reject(new SetupError(listenProblem(flag, host, port, err))));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

function uid(): string {
  return typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '';
}

/** One line for a file-system error met while opening `--dir`: the path, the cause, what to fix. */
export function dataDirProblem(dir: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const path = e.path ?? dir;
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return `--dir ${dir}: permission denied on ${path}; make it readable and writable by this user${uid()} with chown/chmod, or choose another --dir`;
    case 'EROFS':
      return `--dir ${dir}: ${path} is on a read-only file system; choose a --dir on a writable one`;
    case 'ENOTDIR':
    case 'EEXIST':
      return `--dir ${dir}: ${path} is not a directory; give a directory (it is created if missing)`;
    case 'EISDIR':
      return `--dir ${dir}: ${path} is a directory where segkv expects a file; move it out of the data directory`;
    case 'ENOSPC':
      return `--dir ${dir}: no space left on the device of ${path}; free some space`;
    default:
      return `--dir ${dir}: ${e.message}`;
  }
}

/**
 * Creates `dir` if missing, then checks it is a directory this process may
 * read, write and enter, that its files (segments, hints, indexes) are
 * readable and writable, and that its LOCK file (if any) can be opened.
 * Throws SetupError with one line naming --dir, the path and the fix.
 */
export function checkDataDir(dir: string): void {
  try {
    if (!statSync(dir, { throwIfNoEntry: false })) mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) {
      throw new SetupError(
        `--dir ${dir} is a file, not a directory; give a directory (it is created if missing)`,
      );
    }
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isFile() && e.name !== LOCK_FILE) accessSync(join(dir, e.name), constants.R_OK | constants.W_OK);
    }
  } catch (err) {
    if (err instanceof SetupError) throw err;
    throw new SetupError(dataDirProblem(dir, err));
  }
  const lock = join(dir, LOCK_FILE);
  const st = lstatSync(lock, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isFile()) {
    throw new SetupError(
      `--dir ${dir}: ${lock} is not a lock file (${st.isDirectory() ? 'a directory' : 'not a regular file'}); remove it`,
    );
  }
  try {
    closeSync(openSync(lock, 'r'));
  } catch (err) {
    throw new SetupError(
      `--dir ${dir}: cannot open its lock file ${lock} (${(err as NodeJS.ErrnoException).code}); ` +
        `make it readable by this user${uid()}, or remove it if no kv-server uses ${dir}`,
    );
  }
}
