/**
 * The REPL's persistent history: one command per line in ~/.segkv_history,
 * or in $SEGKV_HISTORY (empty = no history file, like REDISCLI_HISTFILE=/dev/null).
 * Each command is appended as it is entered, so a crash loses nothing;
 * the file is cut back to HISTORY_MAX lines when it is loaded. AUTH lines are
 * never written (they carry a password), as in redis-cli. Created mode 0600.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Commands kept in the file and offered by the up arrow. */
export const HISTORY_MAX = 1000;
export const HISTORY_ENV = 'SEGKV_HISTORY';

export function historyPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = env[HISTORY_ENV];
  if (p === '') return undefined;
  return p ?? join(homedir(), '.segkv_history');
}

/** Whether a line may be saved: not empty, not an AUTH (password). */
export function savable(line: string): boolean {
  const first = line.trimStart().split(/\s/, 1)[0] ?? '';
  return first !== '' && first.toUpperCase() !== 'AUTH';
}

export class History {
  private warned = false;

  constructor(readonly path: string | undefined) {}

  /** The saved commands, oldest first (at most HISTORY_MAX). */
  load(): string[] {
    if (this.path === undefined) return [];
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n').filter((l) => l !== '');
    if (lines.length <= HISTORY_MAX) return lines;
    const kept = lines.slice(-HISTORY_MAX);
    try {
      writeFileSync(this.path, kept.map((l) => `${l}\n`).join(''), { mode: 0o600 });
    } catch {
      // read-only history: keep using what we read
    }
    return kept;
  }

  add(line: string): void {
    if (this.path === undefined || !savable(line)) return;
    try {
      appendFileSync(this.path, `${line.replaceAll('\n', ' ')}\n`, { mode: 0o600 });
    } catch (err) {
      if (!this.warned) {
        this.warned = true;
        process.stderr.write(`kv-cli: cannot write history to ${this.path}: ${(err as Error).message}\n`);
      }
    }
  }
}
