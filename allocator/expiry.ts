/**
 * The expiry order: the entries that have an expiry time, in a binary min-heap kept in the
 * segment, so that the entry that expires first is found in O(1) and each one is reclaimed in
 * O(log n), never by a scan of the store.
 *
 * The array lives in a heap block of its own (`ST_EXPIRY_HEAP`, with its length in
 * `ST_EXPIRY_COUNT`): slots of three u32, the entry's offset and its expiry time (low 32 bits,
 * high 16), so that sifting compares within the array and touches each entry only to record its
 * new index; each entry records its index in its trailer (see `layout.ts`), so that an
 * overwrite or a delete takes it out in O(log n). It is derived data:
 * the lock holder changes it inside a mutation, and repair rebuilds it from the entries. Readers
 * never look at it: they compare an entry's own expiry time with the clock.
 *
 * @module
 */
import {
  EXPIRY_TRAILER_BYTES,
  EXPIRY_UNTRACKED,
  FLAG_EXPIRES,
  ST_EXPIRY_COUNT,
  ST_EXPIRY_HEAP,
  TAG_FLAGS_SHIFT,
} from "./layout.ts";
import { NO_ROOM, type Tlsf } from "./tlsf.ts";

const TWO_32 = 2 ** 32;
/** Slots of the first array; it doubles when full. */
const FIRST_CAPACITY = 64;
const HEAP = ST_EXPIRY_HEAP >>> 2;
const COUNT = ST_EXPIRY_COUNT >>> 2;
/** u32 words per slot: entry, expiry low, expiry high. */
const SLOT = 3;

/** Whether an entry's tag announces an expiry trailer. */
export function hasExpiry(tag: number): boolean {
  return ((tag >>> TAG_FLAGS_SHIFT) & FLAG_EXPIRES) !== 0;
}

/**
 * The u32 index of an entry's trailer: the last 12 bytes of its block, whose 4-byte size word is
 * just before the entry.
 */
export function trailerWord(u32: Uint32Array, entry: number): number {
  return (entry >>> 2) - 1 + (u32[(entry >>> 2) - 1]! >>> 2) - EXPIRY_TRAILER_BYTES / 4;
}

/** The expiry time (ms since the epoch) in the trailer at word `at`. */
export function expiryAt(u32: Uint32Array, at: number): number {
  return u32[at]! + (u32[at + 1]! & 0xffff) * TWO_32;
}

/** An entry's expiry time, 0 when it has none. */
export function expiryOf(u32: Uint32Array, entry: number): number {
  const tag = u32[entry >>> 2]!;
  return hasExpiry(tag) ? expiryAt(u32, trailerWord(u32, entry)) : 0;
}

/** Writes the trailer of a new entry: its expiry time, not yet in the order. */
export function writeTrailer(u32: Uint32Array, entry: number, expires: number): void {
  const at = trailerWord(u32, entry);
  u32[at] = expires >>> 0;
  u32[at + 1] = Math.floor(expires / TWO_32) & 0xffff;
  u32[at + 2] = EXPIRY_UNTRACKED;
}

/** The expiry order over a store's segment. All methods but `rebuild` expect a sound array. */
export class ExpiryOrder {
  readonly #u32: Uint32Array;
  readonly #heap: Tlsf;

  /**
   * @param u32 The whole segment.
   * @param heap The segment's block heap, where the array lives.
   */
  constructor(u32: Uint32Array, heap: Tlsf) {
    this.#u32 = u32;
    this.#heap = heap;
  }

  /** Entries in the order. */
  get count(): number {
    return this.#u32[COUNT]!;
  }

  /** Slots in the array now. */
  get capacity(): number {
    const array = this.#u32[HEAP]!;
    return array === 0 ? 0 : this.#slotsOf(array);
  }

  #slotsOf(array: number): number {
    return Math.floor(((this.#u32[(array >>> 2) - 1]! >>> 2) - 1) / SLOT);
  }

  /** The entry that expires first, or 0. */
  first(): number {
    const u32 = this.#u32;
    return u32[COUNT] === 0 ? 0 : u32[u32[HEAP]! >>> 2]!;
  }

  /** The expiry time of {@linkcode ExpiryOrder.first}, or `Infinity` when the order is empty. */
  firstExpiry(): number {
    const u32 = this.#u32;
    return u32[COUNT] === 0 ? Infinity : expiryAt(u32, (u32[HEAP]! >>> 2) + 1);
  }

  /** Forgets the array (after the heap was reset, when it is gone with everything else). */
  clear(): void {
    this.#u32[HEAP] = 0;
    this.#u32[COUNT] = 0;
  }

  /**
   * Makes room for `count` entries, moving the array to a larger block when it is too small.
   *
   * @returns `false` when the heap has no block large enough (the caller may free some room
   * and try again); the order is unchanged then.
   */
  reserve(count: number): boolean {
    const bytes = this.wanted(count);
    if (bytes === 0) return true;
    const fresh = this.#heap.alloc(bytes);
    if (fresh === NO_ROOM) return false;
    this.adopt(fresh);
    return true;
  }

  /**
   * The payload bytes of the array that `count` entries need when the present one is too small
   * for them, or 0 when it is large enough.
   */
  wanted(count: number): number {
    const array = this.#u32[HEAP]!;
    let capacity = array === 0 ? 0 : this.#slotsOf(array);
    if (count <= capacity) return 0;
    capacity = Math.max(FIRST_CAPACITY, capacity * 2);
    while (capacity < count) capacity *= 2;
    return capacity * SLOT * 4;
  }

  /** Moves the array into `block`, a used block the caller allocated, and frees the old one. */
  adopt(block: number): void {
    const u32 = this.#u32;
    const old = u32[HEAP]!;
    if (old !== 0) u32.copyWithin(block >>> 2, old >>> 2, (old >>> 2) + u32[COUNT]! * SLOT);
    u32[HEAP] = block;
    if (old !== 0) this.#heap.free(old);
  }

  /**
   * Puts an entry with an expiry trailer into the order. When the array is full and cannot grow,
   * the entry stays out of it (`EXPIRY_UNTRACKED`): readers still see it expire, and it goes
   * when it is overwritten, deleted or evicted.
   */
  insert(entry: number): void {
    const u32 = this.#u32;
    const count = u32[COUNT]!;
    if (!this.reserve(count + 1)) return;
    u32[COUNT] = count + 1;
    const at = trailerWord(u32, entry);
    this.#set(count, entry, u32[at]!, u32[at + 1]!);
    this.#siftUp(count);
  }

  /** Takes an entry out of the order (nothing when it is in none). */
  remove(entry: number): void {
    const u32 = this.#u32;
    const at = trailerWord(u32, entry) + 2;
    const index = u32[at]!;
    u32[at] = EXPIRY_UNTRACKED;
    const count = u32[COUNT]!;
    if (index >= count) return; // untracked (or damage, which repair settles)
    const from = (u32[HEAP]! >>> 2) + (count - 1) * SLOT;
    const last = count - 1;
    u32[COUNT] = last;
    if (index === last) return;
    this.#set(index, u32[from]!, u32[from + 1]!, u32[from + 2]!);
    if (!this.#siftUp(index)) this.#siftDown(index);
  }

  /**
   * Fills the order afresh with `entries` (every live entry that has an expiry trailer), in a
   * block it allocates (or the old one, when `keep` says it survived and is large enough). For
   * repair: nothing of the old array is trusted.
   *
   * @returns How many entries did not fit (left untracked).
   */
  rebuild(entries: number[], keep: boolean): number {
    const u32 = this.#u32;
    if (!keep) u32[HEAP] = 0;
    u32[COUNT] = 0;
    for (const entry of entries) u32[trailerWord(u32, entry) + 2] = EXPIRY_UNTRACKED;
    if (entries.length === 0) return 0;
    let room = entries.length;
    while (room > 0 && !this.reserve(room)) room >>>= 1;
    const sorted = entries
      .map((entry) => ({ entry, expires: expiryAt(u32, trailerWord(u32, entry)) }))
      .sort((a, b) => a.expires - b.expires);
    // A sorted array is a heap; the entries left over expire last.
    for (let i = 0; i < room; i++) {
      const { entry, expires } = sorted[i]!;
      this.#set(i, entry, expires >>> 0, Math.floor(expires / TWO_32));
    }
    u32[COUNT] = room;
    return entries.length - room;
  }

  /**
   * What is wrong with the order: the array's block, the count, each slot's entry (`isEntry`
   * tells a live entry from anything else), the indexes and the heap property.
   *
   * @param isEntry Whether an offset is a live entry.
   * @param blocks The used blocks by offset, with their payload sizes.
   * @returns The problems; empty when sound.
   */
  verify(isEntry: (offset: number) => boolean, blocks: Map<number, number>): string[] {
    const u32 = this.#u32;
    const array = u32[HEAP]!;
    const count = u32[COUNT]!;
    const problems: string[] = [];
    if (array === 0) {
      if (count !== 0) problems.push(`expiry order: ${count} entries but no array`);
      return problems;
    }
    const size = blocks.get(array);
    if (size === undefined) return [`expiry order: its array at ${array} is not a used block`];
    if (count * SLOT * 4 > size) {
      return [`expiry order: ${count} entries overflow its ${size}-byte array`];
    }
    const base = array >>> 2;
    for (let i = 0; i < count; i++) {
      const slot = base + i * SLOT;
      const entry = u32[slot]!;
      if (!isEntry(entry) || !hasExpiry(u32[entry >>> 2]!)) {
        problems.push(`expiry order: slot ${i} holds ${entry}, not an entry with an expiry`);
        continue;
      }
      const at = trailerWord(u32, entry);
      if (u32[at + 2] !== i) {
        problems.push(`expiry order: entry ${entry} records index ${u32[at + 2]}, not ${i}`);
      }
      if (expiryAt(u32, slot + 1) !== expiryAt(u32, at)) {
        problems.push(`expiry order: slot ${i} has another expiry time than its entry`);
      }
      if (i > 0 && expiryAt(u32, base + ((i - 1) >>> 1) * SLOT + 1) > expiryAt(u32, slot + 1)) {
        problems.push(`expiry order: slot ${i} expires before its parent`);
      }
    }
    return problems;
  }

  /** Fills slot `index` and records the index in the entry's trailer. */
  #set(index: number, entry: number, low: number, high: number): void {
    const u32 = this.#u32;
    const slot = (u32[HEAP]! >>> 2) + index * SLOT;
    u32[slot] = entry;
    u32[slot + 1] = low;
    u32[slot + 2] = high;
    u32[trailerWord(u32, entry) + 2] = index;
  }

  /** Moves the slot up while it expires before its parent; whether it moved. */
  #siftUp(index: number): boolean {
    const u32 = this.#u32;
    const base = u32[HEAP]! >>> 2;
    const slot = base + index * SLOT;
    const entry = u32[slot]!, low = u32[slot + 1]!, high = u32[slot + 2]!;
    const expires = low + (high & 0xffff) * TWO_32;
    let moved = false;
    while (index > 0) {
      const parent = (index - 1) >>> 1;
      const up = base + parent * SLOT;
      if (expiryAt(u32, up + 1) <= expires) break;
      this.#set(index, u32[up]!, u32[up + 1]!, u32[up + 2]!);
      index = parent;
      moved = true;
    }
    if (moved) this.#set(index, entry, low, high);
    return moved;
  }

  #siftDown(index: number): void {
    const u32 = this.#u32;
    const base = u32[HEAP]! >>> 2;
    const count = u32[COUNT]!;
    const slot = base + index * SLOT;
    const entry = u32[slot]!, low = u32[slot + 1]!, high = u32[slot + 2]!;
    const expires = low + (high & 0xffff) * TWO_32;
    let moved = false;
    for (;;) {
      const left = index * 2 + 1;
      if (left >= count) break;
      let child = left;
      let childExpires = expiryAt(u32, base + left * SLOT + 1);
      if (left + 1 < count) {
        const rightExpires = expiryAt(u32, base + (left + 1) * SLOT + 1);
        if (rightExpires < childExpires) {
          child = left + 1;
          childExpires = rightExpires;
        }
      }
      if (childExpires >= expires) break;
      const down = base + child * SLOT;
      this.#set(index, u32[down]!, u32[down + 1]!, u32[down + 2]!);
      index = child;
      moved = true;
    }
    if (moved) this.#set(index, entry, low, high);
  }
}
