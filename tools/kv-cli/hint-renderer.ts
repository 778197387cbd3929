/**
 * Draws the REPL's argument hint (completion.ts hintFor) on a terminal:
 * after each keypress that leaves the cursor at the end of the line, the
 * hint is written after the cursor in ANSI dim and the cursor is moved back,
 * so the hint is never part of the line. node:readline redraws the whole
 * line on most edits (erasing what follows), and the hint is erased before
 * Enter moves to the next line. Hints that do not fit the row are cut.
 */
import type { Interface } from 'node:readline';
import { hintFor } from './completion.js';

const DIM = '\x1b[2m';
const RESET = '\x1b[0m';
const ERASE_RIGHT = '\x1b[0K';

interface Key {
  name?: string;
}

export class HintRenderer {
  private shown = false;

  constructor(
    private readonly rl: Interface,
    private readonly out: NodeJS.WriteStream,
  ) {}

  /** Listens to `input`'s keypresses: call after readline.createInterface. */
  attach(input: NodeJS.ReadStream): void {
    // Before readline's own listener: erase the hint before Enter ends the line.
    input.prependListener('keypress', (_s: string | undefined, key: Key | undefined) => {
      if (key?.name === 'return' || key?.name === 'enter') this.clear();
    });
    // After it: the line is up to date.
    input.on('keypress', (_s: string | undefined, key: Key | undefined) => {
      if (key?.name === 'return' || key?.name === 'enter') return;
      this.draw();
    });
  }

  /** Erases a drawn hint (it sits right after the end of the line). */
  clear(): void {
    if (!this.shown) return;
    this.shown = false;
    const behind = this.rl.line.length - this.rl.cursor;
    if (behind > 0) this.out.write(`\x1b[${behind}C${ERASE_RIGHT}\x1b[${behind}D`);
    else this.out.write(ERASE_RIGHT);
  }

  draw(): void {
    if (this.rl.cursor !== this.rl.line.length) {
      this.clear();
      return;
    }
    const hint = hintFor(this.rl.line) ?? '';
    const room = (this.out.columns || 80) - this.rl.getCursorPos().cols - 1;
    const text = hint.length <= room ? hint : room > 0 ? hint.slice(0, room) : '';
    if (text === '') {
      if (this.shown) this.out.write(ERASE_RIGHT);
      this.shown = false;
      return;
    }
    this.out.write(`${ERASE_RIGHT}${DIM}${text}${RESET}\x1b[${text.length}D`);
    this.shown = true;
  }
}
