/**
 * The directory: names to entries, a chained hash table inside the segment. The bucket array
 * is a heap block of u32 entry offsets; each entry links to the next in its bucket. It doubles
 * when there are more entries than buckets, so lookups stay O(1) on average however many
 * entries there are.
 *
 * Readers walk it without a lock while a writer may be changing it (the store's seqlock tells
 * them to retry), so every walk here is bounded and checks each offset before reading it.
 *
 * @module
 */
import {
  E_HASH_NEXT,
  E_TAG,
  ENTRY_HEADER_BYTES,
  ENTRY_TAG,
  MIN_BUCKETS,
  ST_BUCKET_COUNT,
  ST_BUCKETS,
  TAG_NAME_SHIFT,
} from "./layout.ts";

/** FNV-1a over `length` bytes of `bytes` from `start`: the name's hash. */
export function hashBytes(bytes: Uint8Array, length: number, start = 0): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < start + length; i++) {
    hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  }
  return hash >>> 0;
}

/** The directory over one mapping; `lo`..`hi` bounds the byte offsets an entry may have. */
export class Directory {
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #lo: number;
  readonly #hi: number;

  /**
   * @param u8 A byte view of the whole segment.
   * @param u32 A u32 view of the whole segment.
   * @param lo Smallest byte offset an entry may start at (the heap start).
   * @param hi Largest byte offset an entry header may end at (the heap end).
   */
  constructor(u8: Uint8Array, u32: Uint32Array, lo: number, hi: number) {
    this.#u8 = u8;
    this.#u32 = u32;
    this.#lo = lo;
    this.#hi = hi;
  }

  /** Whether `entry` is an offset at which an entry header could lie. */
  isEntryOffset(entry: number): boolean {
    return (entry & 3) === 0 && entry >= this.#lo && entry + ENTRY_HEADER_BYTES <= this.#hi;
  }

  /**
   * Finds the entry called `name` (its first `length` bytes, whose hash is `hash`), or 0. Bounded
   * by `limit` steps, and returns -1 when a step is out of bounds or the walk is too long (a torn
   * view: retry). An entry is compared by its tag (the name's length and the tag byte in one
   * word), then by the name's bytes.
   */
  find(name: Uint8Array, length: number, hash: number, limit: number): number {
    const u32 = this.#u32;
    const u8 = this.#u8;
    const count = u32[ST_BUCKET_COUNT >>> 2]!;
    const buckets = u32[ST_BUCKETS >>> 2]!;
    // Fewer buckets than stripes would mix stripes in one chain: a torn view, or damage.
    if (count < MIN_BUCKETS || (count & (count - 1)) !== 0 || (buckets & 3) !== 0) return -1;
    const slot = buckets + ((hash & (count - 1)) << 2);
    if (buckets < this.#lo || slot + 4 > this.#hi) return -1;
    let entry = u32[slot >>> 2]!;
    const expected = (length << TAG_NAME_SHIFT) | ENTRY_TAG; // as an int32, like `tag & mask`
    for (let steps = 0; entry !== 0; steps++) {
      if (steps > limit || !this.isEntryOffset(entry)) return -1;
      const w = entry >>> 2;
      const tag = u32[w + (E_TAG >>> 2)]!;
      if ((tag & 0xff00_00ff) === expected) {
        const at = entry + ENTRY_HEADER_BYTES;
        if (at + length > this.#hi) return -1;
        let i = 0;
        while (i < length && u8[at + i] === name[i]) i++;
        if (i === length) return entry;
      }
      entry = u32[w + (E_HASH_NEXT >>> 2)]!;
    }
    return 0;
  }

  /** The byte offset of the bucket slot for `hash`. Writers only: the header is trusted. */
  slotOf(hash: number): number {
    const u32 = this.#u32;
    return u32[ST_BUCKETS >>> 2]! + ((hash & (u32[ST_BUCKET_COUNT >>> 2]! - 1)) << 2);
  }

  /** Puts `entry`, whose name hashes to `hash`, first in its bucket. Writers only. */
  insert(entry: number, hash: number): void {
    const u32 = this.#u32;
    const slot = this.slotOf(hash);
    u32[(entry + E_HASH_NEXT) >>> 2] = u32[slot >>> 2]!;
    u32[slot >>> 2] = entry;
  }

  /**
   * Puts `entry` in the place of `old` in the same bucket chain with one store, so a reader sees
   * either the old entry or the new one. Writers only.
   */
  replace(old: number, entry: number, hash: number): void {
    const u32 = this.#u32;
    u32[(entry + E_HASH_NEXT) >>> 2] = u32[(old + E_HASH_NEXT) >>> 2]!;
    u32[this.#linkTo(old, hash) >>> 2] = entry;
  }

  /** Takes `entry`, whose name hashes to `hash`, out of its bucket chain. Writers only. */
  remove(entry: number, hash: number): void {
    const u32 = this.#u32;
    u32[this.#linkTo(entry, hash) >>> 2] = u32[(entry + E_HASH_NEXT) >>> 2]!;
  }

  /** The byte offset of the word that points at `entry`: its bucket slot or a chain link. */
  #linkTo(entry: number, hash: number): number {
    const u32 = this.#u32;
    let link = this.slotOf(hash);
    // Writers hold the lock and the directory is consistent, so the entry is in this chain;
    // if it is not (a damaged segment), the walk stops at the first bad link or after as many
    // steps as the heap could hold entries, and the caller repairs.
    const limit = (this.#hi - this.#lo) / ENTRY_HEADER_BYTES;
    for (let steps = 0; u32[link >>> 2] !== entry; steps++) {
      const next = u32[link >>> 2]!;
      if (next === 0 || steps > limit || !this.isEntryOffset(next)) {
        throw new Error(`Directory corrupt: entry ${entry} is not in its bucket chain`);
      }
      link = next + E_HASH_NEXT;
    }
    return link;
  }

  /**
   * Points the header at a new bucket array of `count` slots at `buckets` (a heap payload of at
   * least `count * 4` bytes), empty, then links every entry yields into it, each with its name's
   * hash as `hashOf` computes it. Writers only.
   */
  rebuild(
    buckets: number,
    count: number,
    entries: Iterable<number>,
    hashOf: (entry: number) => number,
  ): void {
    const u32 = this.#u32;
    u32.fill(0, buckets >>> 2, (buckets >>> 2) + count);
    u32[ST_BUCKETS >>> 2] = buckets;
    u32[ST_BUCKET_COUNT >>> 2] = count;
    for (const entry of entries) this.insert(entry, hashOf(entry));
  }
}
