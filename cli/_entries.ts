/**
 * The dashboard's entry list: one page of a store's entries, filtered by prefix, sorted and
 * paged on the server, fast on a store of a million entries.
 *
 * - In write order (`sort: "version"`, ascending: the order `Memalloc.list` walks), the page is
 *   streamed: the walk skips `offset` entries and stops after `limit + 1`.
 * - In any other order every matching entry is looked at once, and only the best
 *   `offset + limit` are kept, in a bounded binary heap: O(n log k) time and O(k) memory, never
 *   a sort of the whole store.
 *
 * @module
 */
import type { Memalloc, MemallocListedEntry } from "../memalloc.ts";

/** The columns the entry list sorts by. */
export const SORT_KEYS = ["name", "size", "written", "created", "expires", "version"] as const;
/** One of {@linkcode SORT_KEYS}. */
export type SortKey = typeof SORT_KEYS[number];

/** What {@linkcode pageEntries} lists. */
export interface EntryQuery {
  /** Only names that start with this. */
  prefix: string;
  /** The column to sort by. */
  sort: SortKey;
  /** Ascending or descending. */
  order: "asc" | "desc";
  /** Entries to skip. */
  offset: number;
  /** Entries to return at most. */
  limit: number;
}

/** One page of entries. */
export interface EntryPage {
  /** The entries of the page. */
  entries: MemallocListedEntry[];
  /** Matching entries in all, when the walk saw them all; `null` when it stopped early. */
  total: number | null;
  /** Whether there are entries after this page. */
  more: boolean;
  /** Entries the walk looked at. */
  scanned: number;
  /** Time the page took, in ms. */
  tookMs: number;
}

type Compare = (a: MemallocListedEntry, b: MemallocListedEntry) => number;

function comparator(sort: SortKey, order: "asc" | "desc"): Compare {
  const sign = order === "asc" ? 1 : -1;
  if (sort === "name") {
    return (
      a,
      b,
    ) => (a.name < b.name ? -sign : a.name > b.name ? sign : sign * (a.version - b.version));
  }
  const field = (entry: MemallocListedEntry): number =>
    sort === "expires" ? (entry.expires ?? Infinity) : entry[sort];
  // Ties in write order (newest first when descending), so that paging is stable.
  return (a, b) => {
    const x = field(a), y = field(b);
    return x < y ? -sign : x > y ? sign : sign * (a.version - b.version);
  };
}

/**
 * One page of the entries of `store`, as {@linkcode EntryQuery} asks. Reads no value (it walks
 * `Memalloc.list`), so it counts no hit or miss and changes nothing.
 *
 * @param store The open store.
 * @param query Prefix, sort column and order, offset and limit (checked by the caller).
 * @returns The page, with the total when the walk saw every matching entry.
 * @throws {MemallocError} When the store is closed.
 *
 * @example The two largest entries
 * ```ts
 * import { Memalloc } from "../memalloc.ts";
 * import { pageEntries } from "./_entries.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
 * for (let i = 1; i <= 5; i++) store.write(`k${i}`, "x".repeat(i));
 * const page = pageEntries(store, { prefix: "k", sort: "size", order: "desc", offset: 0, limit: 2 });
 * console.log(page.entries.map((entry) => entry.name), page.total); // [ "k5", "k4" ] 5
 * Memalloc.unlink(name);
 * ```
 */
export function pageEntries(store: Memalloc, query: EntryQuery): EntryPage {
  const started = performance.now();
  const { prefix, sort, order, offset, limit } = query;
  const listing = store.list(prefix === "" ? undefined : { prefix });
  if (sort === "version" && order === "asc") {
    // The walk's own order: skip, take, and stop at the first entry past the page.
    const entries: MemallocListedEntry[] = [];
    let scanned = 0;
    let more = false;
    for (const entry of listing) {
      scanned++;
      if (scanned <= offset) continue;
      if (entries.length === limit) {
        more = true;
        break;
      }
      entries.push(entry);
    }
    return {
      entries,
      total: more ? null : scanned,
      more,
      scanned,
      tookMs: performance.now() - started,
    };
  }
  const compare = comparator(sort, order);
  const keep = offset + limit;
  // A max-heap (by `compare`) of the best `keep` entries so far: its root is the worst of them.
  const heap: MemallocListedEntry[] = [];
  let scanned = 0;
  for (const entry of listing) {
    scanned++;
    if (keep === 0) continue;
    if (heap.length < keep) {
      heap.push(entry);
      siftUp(heap, heap.length - 1, compare);
    } else if (compare(entry, heap[0]!) < 0) {
      heap[0] = entry;
      siftDown(heap, 0, compare);
    }
  }
  heap.sort(compare);
  // An entry written during the walk may come twice (at its old and its new place): keep the
  // newer one.
  const newest = new Map<string, MemallocListedEntry>();
  for (const entry of heap) {
    const seen = newest.get(entry.name);
    if (seen === undefined || seen.version < entry.version) newest.set(entry.name, entry);
  }
  const unique = heap.filter((entry) => newest.get(entry.name) === entry);
  const entries = unique.slice(offset, offset + limit);
  return {
    entries,
    total: scanned - (heap.length - unique.length),
    more: offset + limit < scanned,
    scanned,
    tookMs: performance.now() - started,
  };
}

function siftUp(heap: MemallocListedEntry[], at: number, compare: Compare): void {
  const item = heap[at]!;
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (compare(heap[parent]!, item) >= 0) break;
    heap[at] = heap[parent]!;
    at = parent;
  }
  heap[at] = item;
}

function siftDown(heap: MemallocListedEntry[], at: number, compare: Compare): void {
  const item = heap[at]!;
  const length = heap.length;
  for (;;) {
    let child = 2 * at + 1;
    if (child >= length) break;
    if (child + 1 < length && compare(heap[child + 1]!, heap[child]!) > 0) child++;
    if (compare(heap[child]!, item) <= 0) break;
    heap[at] = heap[child]!;
    at = child;
  }
  heap[at] = item;
}
