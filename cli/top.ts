/**
 * `memalloc top`: a store's figures, refreshed: operations per second from successive
 * `stats()`, the hit ratio, and a usage bar. Redrawn in place on a terminal; one plain line per
 * refresh when the output is a pipe or a file; one JSON object per line with `--json`.
 *
 * @module
 */
import type { Memalloc, MemallocStats } from "../memalloc.ts";
import { formatBytes, formatPercent, formatTable, formatTime } from "./format.ts";

/** The counters whose change per second `top` shows. */
export const RATE_COUNTERS = ["writes", "hits", "misses", "evictions", "deletes"] as const;
/** One of {@linkcode RATE_COUNTERS}. */
export type RateCounter = typeof RATE_COUNTERS[number];

/** How {@linkcode runTop} refreshes. */
export interface TopOptions {
  /** Time between refreshes in ms (default 1,000). */
  interval?: number;
  /** Stop after this many refreshes (default: until `signal` aborts). */
  count?: number;
  /** One JSON object per line per refresh instead of text. */
  json?: boolean;
  /** Ends the view (Ctrl-C). */
  signal?: AbortSignal;
}

/** Where {@linkcode runTop} writes. */
export interface TopOutput {
  /** Writes text to standard output. */
  write(text: string): void;
  /** Whether standard output is a terminal: redraw in place, else one line per refresh. */
  isTTY: boolean;
  /** The terminal's width in columns, when known. */
  columns?: number;
}

/** One refresh: the figures, and the rates since the one before (none for the first). */
export interface TopSample {
  /** When the figures were taken (ms since the epoch). */
  time: number;
  /** The store's figures. */
  stats: MemallocStats;
  /** Changes per second since the previous sample; `null` for the first. */
  perSecond: Record<RateCounter, number> | null;
  /**
   * Hits ÷ (hits + misses) since the previous sample when there were reads, else over the
   * store's life; `null` when no read was ever counted.
   */
  hitRatio: number | null;
}

const ESC = "\x1b[";
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
const HOME_CLEAR = `${ESC}H${ESC}2J`;

/**
 * Shows a store's figures every `interval` ms until `count` refreshes are done or `signal`
 * aborts. On a terminal each refresh redraws the screen (cursor home, clear) with the cursor
 * hidden, and the cursor is shown again at the end, however it ends; otherwise each refresh is
 * one line. Reads only the store's figures: it counts no read and writes nothing.
 *
 * @param store The open store.
 * @param output Where to write, and whether it is a terminal.
 * @param options Interval, count, JSON lines, and the signal that ends the view.
 * @returns When the view ends.
 * @throws {MemallocError} When the store's figures cannot be read (closed store, lock timeout).
 *
 * @example Two refreshes as plain lines
 * ```ts
 * import { Memalloc } from "../memalloc.ts";
 * import { runTop } from "./top.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
 * const lines: string[] = [];
 * await runTop(store, { write: (text) => lines.push(text), isTTY: false }, {
 *   interval: 10,
 *   count: 2,
 * });
 * console.log(lines.length); // 2
 * Memalloc.unlink(name);
 * ```
 */
export async function runTop(
  store: Memalloc,
  output: TopOutput,
  options: TopOptions = {},
): Promise<void> {
  const { interval = 1000, count = Infinity, json = false, signal } = options;
  const live = output.isTTY && !json;
  let previous: { stats: MemallocStats; at: number } | undefined;
  if (live) output.write(HIDE_CURSOR);
  try {
    for (let refresh = 0; refresh < count && !signal?.aborted; refresh++) {
      if (refresh > 0) await sleep(interval, signal);
      if (signal?.aborted) break;
      const stats = store.stats();
      const at = performance.now();
      const sample = toSample(
        stats,
        previous?.stats,
        previous === undefined ? 0 : at - previous.at,
      );
      previous = { stats, at };
      if (json) output.write(`${JSON.stringify(sample)}\n`);
      else if (live) output.write(HOME_CLEAR + frame(sample, interval, output.columns || 80));
      else output.write(`${line(sample)}\n`);
    }
  } finally {
    if (live) output.write(SHOW_CURSOR);
  }
}

function toSample(
  stats: MemallocStats,
  before: MemallocStats | undefined,
  elapsedMs: number,
): TopSample {
  let perSecond: Record<RateCounter, number> | null = null;
  let hits = stats.hits;
  let misses = stats.misses;
  if (before !== undefined && elapsedMs > 0) {
    const rates = {} as Record<RateCounter, number>;
    for (const counter of RATE_COUNTERS) {
      rates[counter] = Math.max(0, stats[counter] - before[counter]) / (elapsedMs / 1000);
    }
    perSecond = rates;
    if (stats.hits - before.hits + stats.misses - before.misses > 0) {
      hits = stats.hits - before.hits;
      misses = stats.misses - before.misses;
    }
  }
  const reads = hits + misses;
  return { time: Date.now(), stats, perSecond, hitRatio: reads > 0 ? hits / reads : null };
}

function rate(value: number | undefined): string {
  if (value === undefined) return "-";
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** One plain line, for a pipe. */
function line(sample: TopSample): string {
  const { stats, perSecond } = sample;
  const rates = RATE_COUNTERS.map((counter) => `${counter}/s=${rate(perSecond?.[counter])}`);
  return [
    formatTime(sample.time),
    stats.name,
    `entries=${stats.entries}`,
    `used=${formatBytes(stats.bytesUsed)}/${formatBytes(stats.capacity)}`,
    `usage=${formatPercent(stats.bytesUsed / stats.capacity)}`,
    ...rates,
    `hit-ratio=${sample.hitRatio === null ? "-" : formatPercent(sample.hitRatio)}`,
  ].join(" ");
}

/**
 * The usage bar: `#` for used bytes, `.` for free, `|` at the watermark, e.g.
 * `[#######.....|...]`.
 */
function bar(stats: MemallocStats, width: number): string {
  const used = Math.min(width, Math.round((stats.bytesUsed / stats.capacity) * width));
  const mark = Math.min(width - 1, Math.round(stats.autoclean * width));
  let text = "";
  for (let i = 0; i < width; i++) text += i === mark && i >= used ? "|" : i < used ? "#" : ".";
  return `[${text}]`;
}

/** The whole screen, for a terminal. */
function frame(sample: TopSample, interval: number, columns: number): string {
  const { stats, perSecond } = sample;
  const width = Math.max(10, Math.min(60, columns - 40));
  const usage = `${bar(stats, width)} ${formatPercent(stats.bytesUsed / stats.capacity)} of ${
    formatBytes(stats.capacity)
  }`;
  const head = formatTable([
    ["store", stats.name, "time", formatTime(sample.time)],
    ["lock", stats.lockKind, "created", formatTime(stats.createdAt)],
    ["entries", String(stats.entries), "largest free", formatBytes(stats.largestFree)],
    ["used", formatBytes(stats.bytesUsed), "watermark", formatPercent(stats.autoclean)],
  ]);
  const counters = formatTable([
    ["", "total", "per second"],
    ...RATE_COUNTERS.map((
      counter,
    ) => [counter, String(stats[counter]), rate(perSecond?.[counter])]),
    ["repairs", String(stats.repairs), ""],
  ], { right: [1, 2] });
  const ratio = sample.hitRatio === null ? "-" : formatPercent(sample.hitRatio);
  return `memalloc top: every ${interval} ms, Ctrl-C to quit\n\n${head}\n\nusage  ${usage}\n\n${counters}\n\nhit ratio  ${ratio}\n`;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
