/**
 * The chart of bench:server as a self-contained SVG: two panels of grouped
 * bars (ops/s above, p99 latency below), one group per row of the table
 * (durability, pipeline depth, workload), one bar per store, value printed
 * on each bar. Linear scales from 0; no dependencies.
 */
import type { ThroughputRow } from './server.js';

const COLORS = { segkv: '#2b6cb0', redis: '#c53030' } as const;
const WIDTH_PER_GROUP = 78;
const PANEL_HEIGHT = 220;
const LEFT = 70;
const TOP = 50;
const GAP = 90;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round axis maximum at or above `x`: 1, 2 or 5 times a power of ten. */
function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function short(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2);
}

function panel(
  rows: readonly ThroughputRow[],
  top: number,
  title: string,
  value: (r: ThroughputRow, store: 'segkv' | 'redis') => number | undefined,
): string[] {
  const out: string[] = [];
  const values = rows.flatMap((r) => [value(r, 'segkv'), value(r, 'redis')]).filter((v) => v !== undefined);
  const max = niceMax(Math.max(...(values as number[])));
  const width = rows.length * WIDTH_PER_GROUP;
  out.push(`<text x="${LEFT}" y="${top - 12}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = top + PANEL_HEIGHT - (PANEL_HEIGHT * i) / 4;
    out.push(
      `<line x1="${LEFT}" x2="${LEFT + width}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${LEFT - 6}" y="${y + 4}" font-size="11" text-anchor="end">${short((max * i) / 4)}</text>`,
    );
  }
  rows.forEach((r, g) => {
    const x0 = LEFT + g * WIDTH_PER_GROUP + 10;
    (['segkv', 'redis'] as const).forEach((store, b) => {
      const v = value(r, store);
      if (v === undefined) return;
      const h = (PANEL_HEIGHT * v) / max;
      const x = x0 + b * 29;
      const y = top + PANEL_HEIGHT - h;
      out.push(
        `<rect x="${x}" y="${y.toFixed(1)}" width="27" height="${h.toFixed(1)}" fill="${COLORS[store]}"><title>${store} ${esc(String(v))}</title></rect>`,
        `<text x="${x + 13.5}" y="${(y - 3).toFixed(1)}" font-size="9" text-anchor="middle">${short(v)}</text>`,
      );
    });
    const label = `${r.mode === 'always' ? 'always' : 'interval'} P${r.pipeline}`;
    const cx = x0 + 28;
    out.push(
      `<text x="${cx}" y="${top + PANEL_HEIGHT + 14}" font-size="11" text-anchor="middle">${esc(r.workload)}</text>`,
      `<text x="${cx}" y="${top + PANEL_HEIGHT + 27}" font-size="10" fill="#555" text-anchor="middle">${esc(label)}</text>`,
    );
  });
  return out;
}

export function serverChart(rows: readonly ThroughputRow[], subtitle: string): string {
  const width = LEFT + rows.length * WIDTH_PER_GROUP + 20;
  const height = TOP + 2 * PANEL_HEIGHT + GAP + 50;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="18" font-size="15" font-weight="bold">kv-server vs redis-server (higher ops/s and lower p99 are better)</text>`,
    `<text x="${LEFT}" y="33" font-size="10" fill="#555">${esc(subtitle)}</text>`,
    `<rect x="${width - 150}" y="8" width="12" height="12" fill="${COLORS.segkv}"/><text x="${width - 134}" y="18" font-size="12">segkv</text>`,
    `<rect x="${width - 85}" y="8" width="12" height="12" fill="${COLORS.redis}"/><text x="${width - 69}" y="18" font-size="12">redis</text>`,
    ...panel(rows, TOP + 15, 'throughput, ops/s', (r, s) =>
      s === 'segkv' ? r.segkv.opsPerSec : r.redis?.opsPerSec,
    ),
    ...panel(rows, TOP + 15 + PANEL_HEIGHT + GAP, 'p99 latency, ms', (r, s) =>
      s === 'segkv' ? r.segkv.p99Ms : r.redis?.p99Ms,
    ),
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}
