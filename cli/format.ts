/**
 * Text for people and for scripts, as the `memalloc` command prints it: sizes in binary units,
 * times as ISO 8601, aligned tables, and stored values shown by the rule `memalloc get` states.
 *
 * @module
 */
import { inspect } from "node:util";

const UNITS = ["KiB", "MiB", "GiB", "TiB"] as const;

/**
 * A byte count in binary units: `512 B`, `1.5 KiB`, `50.0 MiB`.
 *
 * @param bytes A count of bytes (a whole number from 0 up).
 * @returns The count with its unit, one decimal from KiB up.
 * @throws {RangeError} For a count that is negative or not finite.
 *
 * @example Sizes of stores
 * ```ts
 * import { formatBytes } from "./format.ts";
 *
 * console.log(formatBytes(512), formatBytes(1536), formatBytes(50 * 1024 * 1024)); // 512 B 1.5 KiB 50.0 MiB
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`A byte count must be a finite number from 0 up, got ${bytes}`);
  }
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A fraction as a percentage with one decimal: `0.352` is `35.2%`.
 *
 * @param fraction The fraction (0 to 1, though any finite number is shown).
 * @returns The percentage, or `-` when `fraction` is not a finite number.
 *
 * @example Usage of a store
 * ```ts
 * import { formatPercent } from "./format.ts";
 *
 * console.log(formatPercent(0.352), formatPercent(Number.NaN)); // 35.2% -
 * ```
 */
export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)}%` : "-";
}

/**
 * A time in milliseconds since the epoch as ISO 8601 in UTC, or `-` when it is not a valid time
 * (a damaged header can hold anything).
 *
 * @param ms Milliseconds since the epoch.
 * @returns The time, e.g. `2026-01-02T03:04:05.678Z`.
 *
 * @example A store's creation time
 * ```ts
 * import { formatTime } from "./format.ts";
 *
 * console.log(formatTime(0), formatTime(Number.NaN)); // 1970-01-01T00:00:00.000Z -
 * ```
 */
export function formatTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? "-" : date.toISOString();
}

/** How {@linkcode formatTable} lays out its columns. */
export interface TableOptions {
  /** Indexes of the columns aligned to the right (numbers); the others are aligned left. */
  right?: readonly number[];
}

/**
 * Rows of cells as aligned plain text: each column as wide as its widest cell, two spaces
 * between columns, no trailing spaces. The first row is usually the header.
 *
 * @param rows The rows; a short row leaves its last columns empty.
 * @param options Which columns are aligned to the right.
 * @returns The lines, joined by `\n`, without a final newline.
 *
 * @example A small table
 * ```ts
 * import { formatTable } from "./format.ts";
 *
 * const text = formatTable([["NAME", "SIZE"], ["a", "1.0 MiB"], ["longer", "64.0 KiB"]], {
 *   right: [1],
 * });
 * console.log(text.split("\n")[1]); // a        1.0 MiB
 * ```
 */
export function formatTable(
  rows: readonly (readonly string[])[],
  options: TableOptions = {},
): string {
  const right = new Set(options.right ?? []);
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    widths.map((width, i) => {
      const cell = row[i] ?? "";
      return right.has(i) ? cell.padStart(width) : cell.padEnd(width);
    }).join("  ").trimEnd()
  ).join("\n");
}

/**
 * Whether `JSON.stringify` gives back exactly this value: `null`, booleans, strings, finite
 * numbers other than `-0`, and arrays and plain objects of those. `Date`, `Map`, `Set`,
 * `bigint`, `undefined`, `NaN`, typed arrays and class instances are not.
 *
 * @param value Any value.
 * @returns `true` when JSON represents it exactly.
 *
 * @example Which decoded values are JSON
 * ```ts
 * import { isExactJson } from "./format.ts";
 *
 * console.log(isExactJson({ a: [1, "x", null] }), isExactJson({ at: new Date(0) })); // true false
 * ```
 */
export function isExactJson(value: unknown): boolean {
  return exact(value, 0);
}

function exact(value: unknown, depth: number): boolean {
  if (depth > 1000) return false;
  if (value === null || typeof value === "boolean" || typeof value === "string") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (typeof value !== "object") return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !exact(value[i], depth + 1)) return false;
    }
    return true;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  return Object.values(value).every((item) => exact(item, depth + 1));
}

/** How {@linkcode formatValue} wrote a value. */
export type ValueEncoding = "text" | "hex" | "json" | "inspect";

/** A stored value as text, with the rule that made it. */
export interface FormattedValue {
  /** The text. */
  text: string;
  /**
   * `text`: a string, as it is; `hex`: a `Uint8Array`, two lowercase hex digits a byte;
   * `json`: a value JSON represents exactly, as JSON (indented by two spaces); `inspect`: any
   * other value (`Map`, `Set`, `Date`, `bigint`, `undefined` inside ...), as `util.inspect`
   * shows it, which JSON could not without changing it.
   */
  encoding: ValueEncoding;
}

/**
 * A value read from a store as `memalloc get` prints it: strings as they are, bytes as hex,
 * values JSON represents exactly as JSON, anything else as `node:util`'s `inspect` shows it.
 *
 * @param value A value `Memalloc.read` returned.
 * @returns The text and the rule used.
 *
 * @example The four rules
 * ```ts
 * import { formatValue } from "./format.ts";
 *
 * console.log(formatValue("Foobar").text); // Foobar
 * console.log(formatValue(new Uint8Array([0, 255])).text); // 00ff
 * console.log(formatValue([1, 2]).text.replaceAll("\n", "")); // [  1,  2]
 * console.log(formatValue(new Set([1])).text); // Set(1) { 1 }
 * ```
 */
export function formatValue(value: unknown): FormattedValue {
  if (typeof value === "string") return { text: value, encoding: "text" };
  if (value instanceof Uint8Array) return { text: toHex(value), encoding: "hex" };
  if (isExactJson(value)) return { text: JSON.stringify(value, null, 2), encoding: "json" };
  return {
    text: inspect(value, {
      depth: null,
      colors: false,
      maxArrayLength: null,
      maxStringLength: null,
    }),
    encoding: "inspect",
  };
}

/**
 * Bytes as lowercase hex, two digits a byte.
 *
 * @param bytes The bytes.
 * @returns The hex text.
 *
 * @example Hex of three bytes
 * ```ts
 * import { toHex } from "./format.ts";
 *
 * console.log(toHex(new Uint8Array([1, 171, 255]))); // 01abff
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
