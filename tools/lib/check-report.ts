/**
 * kv-check's plain-text report: a summary block, the problems (each with file
 * and byte position), and a RESULT line saying what the operator can do.
 * One fact per line, `name   value`, so it reads well and greps well.
 */
import type { CheckReport, Problem } from './check.js';

/** Problems printed in the text report (all are in --json, up to MAX_PROBLEMS). */
const SHOWN_PROBLEMS = 20;

function line(name: string, value: string): string {
  return `${name.padEnd(14)}${value}\n`;
}

export function describeProblem(p: Problem): string {
  return `${p.file} at byte ${p.position}: ${p.reason} [${p.kind}]`;
}

/** `fixing`: kv-check --fix is about to act, so the report does not tell the operator to run it. */
export function formatReport(r: CheckReport, verbose: boolean, fixing = false): string {
  let out = `kv-check: ${r.dir}\n`;
  if (verbose) {
    for (const s of r.segmentFiles) {
      const offsets = s.records > 0 ? `offsets ${s.firstOffset}..${s.lastOffset}` : 'no records';
      out += `  ${s.file}  ${s.bytes} bytes  ${s.records} records  ${offsets}  hint ${s.hint}  index ${s.index}${s.active ? '  (active)' : ''}\n`;
    }
  }
  const active = r.segmentFiles[r.segmentFiles.length - 1];
  out += line(
    'segments',
    r.segments === 0 ? '0 (no segment files)' : `${r.segments} (active: ${active?.file ?? '-'})`,
  );
  out += line('records', `${r.records} (${r.tombstones} tombstones)`);
  out += line('offsets', r.records > 0 ? `${r.firstOffset}..${r.lastOffset}` : '-');
  out += line('keys', `${r.keys} live, ${r.expiredKeys} expired`);
  out += line(
    'bytes',
    `${r.diskBytes} on disk: ${r.liveBytes} live, ${r.deadBytes} dead, ${r.damagedBytes} damaged`,
  );
  out += line('hints', `${r.hints.ok} ok, ${r.hints.missing} missing, ${r.hints.bad} bad`);
  out += line('indexes', `${r.indexes.ok} ok, ${r.indexes.missing} missing, ${r.indexes.bad} bad`);
  for (const n of r.notes) out += line('note', n);
  const total = r.problems.length + r.moreProblems;
  out += line('problems', String(total));
  for (const p of r.problems.slice(0, SHOWN_PROBLEMS)) out += `  ${describeProblem(p)}\n`;
  if (total > SHOWN_PROBLEMS) out += `  ... ${total - SHOWN_PROBLEMS} more (see --json)\n`;
  const first = r.problems[0];
  if (first) out += line('first problem', describeProblem(first));
  out += '\n';
  if (r.ok) {
    out += 'RESULT: OK\n';
    return out;
  }
  out += 'RESULT: NOT OK\n';
  const t = r.tornTail;
  if (t) {
    out += `The active segment ${t.file} has a torn tail: ${t.bytes} bytes from byte ${t.position} (${t.reason}).\n`;
    if (!fixing) {
      out += `Run kv-check --fix to ${t.rewriteHeader ? 'rewrite its header' : `cut it at byte ${t.position}`} (opening the store does the same).\n`;
    }
  }
  if (r.problems.some((p) => p.kind !== 'torn-tail')) {
    out +=
      'Damage that is not a torn tail of the active segment is not fixable by kv-check: opening the store\n' +
      'reports it and loads everything else; restore the named files from a backup or replica.\n';
  }
  if (r.problems.length > 0 && r.problems.every((p) => p.kind === 'hint' || p.kind === 'index')) {
    out +=
      'Hint and index files are accelerators: the store ignores a bad one and rescans the segment.\n' +
      'Deleting them is safe: a segment without a hint is rescanned at open and gets a fresh hint and index.\n';
  }
  return out;
}
