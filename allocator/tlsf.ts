/**
 * A TLSF (two-level segregated fit) block allocator whose whole state lives inside a region of an
 * `ArrayBuffer`, so that many processes mapping the same shared memory see the same heap.
 *
 * Pure TypeScript over typed arrays: no Deno, Bun or Node API, no JavaScript object references in
 * the heap (offsets only), no object allocation in {@linkcode Tlsf.alloc} or
 * {@linkcode Tlsf.free}. Both are O(1): two bitmap look-ups find a free list whose first block
 * always fits (the request is rounded up to the next size class). Only when that finds nothing
 * does `alloc` try the first 8 blocks of the request's own class, so that an exact fit, up to
 * the whole empty heap, is not refused.
 *
 * ## Layout (little-endian, every field a u32)
 *
 * The region `[offset, offset + length)` is cut into 4-byte granules (one u32 word each). Sizes
 * and links are stored in granules, relative to the region start, so the heap reads the same
 * through any mapping.
 *
 * ```
 * granule 0           control block: magic, version, region granules, first-level count,
 *                     control granules, free granules, free blocks, used blocks, first-level
 *                     bitmap, reserved, one second-level bitmap per first level, then
 *                     32 list heads per first level (0 = empty list)
 * granule C           first block
 * ...                 blocks, back to back
 * granule G - 1       sentinel: a used, header-only block that ends the walk
 * ```
 *
 * The control block is `10 + 33 × FL` granules, with `FL = floor(log2(G)) - 3` first levels
 * for `G >= 32` region granules (436 bytes for the smallest heap, 1,492 bytes for 64 KiB, 2,812
 * bytes for 64 MiB, 3,472 bytes for the largest, 4 GiB - 4 bytes).
 *
 * Every block starts with a 4-byte header; the payload follows it, 4-aligned:
 *
 * ```
 * word 0   size word: block size in granules (header included) × 4 | PREV_FREE (2) | FREE (1)
 * ---      payload. A free block keeps its next and previous free-list links (granules,
 *          0 = none) in its first 8 bytes, and its own start granule in its last 4 bytes
 *          (the footer, which the next block finds just before its header when its PREV_FREE
 *          flag is set). A used block's payload runs to the next header.
 * ```
 *
 * So a used block costs 4 bytes of header, where a TLSF with a previous-block link in every
 * header costs 8. A block is at least 4 granules (16 bytes: header, two links, footer). The size
 * word has 30 bits of granules, so a block (and the region, {@linkcode TLSF_MAX_LENGTH}) is at
 * most 4 GiB - 4 bytes, the largest segment memalloc makes.
 *
 * Size classes: sizes under 32 granules get one exact class each (first level 0); above that,
 * first level `floor(log2(size)) - 4` splits each power of two into 32 classes.
 *
 * ## Crash ordering
 *
 * A process may die at any instruction of `alloc` or `free`; the next one calls
 * {@linkcode Tlsf.rebuild}, which trusts only the forward walk by block sizes and the free bit of
 * each header, and rebuilds everything else (previous-block links, PREV_FREE flags, merges,
 * free lists, bitmaps, counters). So every store that changes a size or a free bit keeps that
 * walk valid, and each such change is ONE u32 store:
 *
 * - alloc with a split: unlink the block, write the remainder's header inside the block's
 *   payload (still garbage to the walk), then shrink the block and clear its free bit in one
 *   store (the commit), then point the block's footer (now the remainder's) at the remainder, then link
 *   the remainder.
 * - alloc without a split: unlink the block, clear its free bit (one store), then clear the
 *   next block's PREV_FREE flag.
 * - free: set the free bit (one store; the walk now sees a free block that may touch free
 *   neighbours), unlink a free next block and grow the block over it (one store), unlink a free
 *   previous block and grow it over the block (one store), then set the next block's previous
 *   link and PREV_FREE flag, then link the merged block. Absorbed headers become payload garbage.
 * - counters in the control block are updated last; after a crash they are stale until
 *   `rebuild()`.
 *
 * A block that `alloc` marked used just before the process died is a used block that nobody
 * owns: the layer above must reconcile its own records with {@linkcode Tlsf.blocks}.
 *
 * @example Allocate, use and free a block
 * ```ts
 * import assert from "node:assert/strict";
 * import { NO_ROOM, Tlsf } from "./tlsf.ts";
 *
 * const buffer = new ArrayBuffer(1 << 16);
 * const heap = Tlsf.format(buffer, 0, buffer.byteLength);
 * const at = heap.alloc(100);
 * assert.notEqual(at, NO_ROOM);
 * new Uint8Array(buffer, at, 100).fill(7);
 * heap.free(at);
 * assert.deepEqual(heap.verify(), []);
 * ```
 *
 * @module
 */

/** Payload alignment and allocation granule, in bytes.
 *
 * @example Offsets are multiples of TLSF_ALIGN
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tlsf, TLSF_ALIGN } from "./tlsf.ts";
 *
 * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
 * assert.equal(heap.alloc(3) % TLSF_ALIGN, 0);
 * ```
 */
export const TLSF_ALIGN = 4;

/** What {@linkcode Tlsf.alloc} returns when no free block is large enough.
 *
 * @example Handle a full heap
 * ```ts
 * import assert from "node:assert/strict";
 * import { NO_ROOM, Tlsf } from "./tlsf.ts";
 *
 * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
 * assert.equal(heap.alloc(heap.maxSize), heap.offset + heap.stats().overhead - 4);
 * assert.equal(heap.alloc(8), NO_ROOM);
 * ```
 */
export const NO_ROOM = -1;

/** Bytes of header in front of every block's payload.
 *
 * @example Header bytes are part of the overhead
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tlsf, TLSF_HEADER_SIZE } from "./tlsf.ts";
 *
 * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
 * const before = heap.stats().overhead;
 * heap.alloc(16);
 * assert.equal(heap.stats().overhead, before + TLSF_HEADER_SIZE);
 * ```
 */
export const TLSF_HEADER_SIZE = 4;

/** The largest region {@linkcode Tlsf.format} accepts: 4 GiB - 4 bytes (2^30 - 1 granules).
 *
 * @example Refuse a region that is too large
 * ```ts
 * import assert from "node:assert/strict";
 * import { TLSF_MAX_LENGTH } from "./tlsf.ts";
 *
 * assert.equal(TLSF_MAX_LENGTH, 2 ** 32 - 4);
 * ```
 */
export const TLSF_MAX_LENGTH = 2 ** 32 - 4;

/** The smallest region {@linkcode Tlsf.format} accepts, in bytes: the control block, one
 * minimal block and the sentinel.
 *
 * @example Format the smallest heap
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tlsf, TLSF_MIN_LENGTH } from "./tlsf.ts";
 *
 * const heap = Tlsf.format(new ArrayBuffer(TLSF_MIN_LENGTH), 0, TLSF_MIN_LENGTH);
 * assert.equal(heap.maxSize, 12);
 * ```
 */
export const TLSF_MIN_LENGTH = 456;

/** One block, as {@linkcode Tlsf.blocks} yields it. */
export interface TlsfBlock {
  /** Absolute byte offset of the payload in the buffer. */
  offset: number;
  /** Payload bytes. */
  size: number;
  /** Whether the block is free. */
  free: boolean;
}

/** Heap figures, as {@linkcode Tlsf.stats} returns them. `used + free + overhead === capacity`. */
export interface TlsfStats {
  /** Payload bytes of used blocks. */
  used: number;
  /** Payload bytes of free blocks. */
  free: number;
  /** Payload bytes of the largest free block. */
  largestFree: number;
  /** Number of used blocks. */
  usedBlocks: number;
  /** Number of free blocks. */
  freeBlocks: number;
  /** `1 - largestFree / free`, or 0 when nothing is free. */
  fragmentation: number;
  /** Bytes of the control block, block headers and the end sentinel. */
  overhead: number;
  /** Region length in bytes. */
  capacity: number;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("Cannot load the TLSF allocator: the platform is not little-endian");
}

// Control block word indices.
const MAGIC = 0x46534c54; // "TLSF" as little-endian bytes
const VERSION = 2;
const W_MAGIC = 0;
const W_VERSION = 1;
const W_GRANULES = 2;
const W_FL_COUNT = 3;
const W_CONTROL = 4;
const W_FREE_GRANULES = 5;
const W_FREE_BLOCKS = 6;
const W_USED_BLOCKS = 7;
const W_FL_MAP = 8;
const W_SL_MAPS = 10; // word 9 is reserved

const SL_LOG2 = 5;
const SL_COUNT = 1 << SL_LOG2;
const FREE = 1;
const PREV_FREE = 2;
const MIN_BLOCK = 4; // granules: header, two links, and the footer of a free block
/** Free-list nodes examined, only when the good-fit search fails, in the request's own class. */
const FALLBACK_SCAN = 8;
const MAX_PROBLEMS = 200;

/** First level of a block of `s` granules. */
function firstLevel(s: number): number {
  return s < SL_COUNT ? 0 : 27 - Math.clz32(s);
}

/** Free-list index (first level × 32 + second level) of a block of `s` granules. */
function classOf(s: number): number {
  if (s < SL_COUNT) return s;
  const shift = 26 - Math.clz32(s);
  return (shift + 1) * SL_COUNT + ((s >>> shift) & (SL_COUNT - 1));
}

function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16).padStart(8, "0");
}

interface Geometry {
  granules: number;
  flCount: number;
  control: number;
}

function geometryOf(granules: number): Geometry {
  const flCount = firstLevel(granules) + 1;
  const words = W_SL_MAPS + flCount + flCount * SL_COUNT;
  return { granules, flCount, control: words };
}

/** Checks the arguments of format/attach and returns the region size in granules. */
function checkRegion(
  verb: string,
  buffer: ArrayBufferLike,
  offset: number,
  length: number,
): number {
  if (
    !(buffer instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer === "function" && buffer instanceof SharedArrayBuffer))
  ) {
    const kind = typeof buffer === "object" && buffer !== null
      ? (buffer as object).constructor?.name ?? "an object"
      : String(buffer);
    throw new TypeError(`Cannot ${verb}: the buffer must be an ArrayBuffer, not ${kind}`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset % TLSF_ALIGN !== 0) {
    throw new RangeError(
      `Cannot ${verb} at offset ${offset}: the offset must be a non-negative multiple of 4`,
    );
  }
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(
      `Cannot ${verb} of ${length} bytes: the length must be a non-negative integer`,
    );
  }
  const granules = Math.floor(length / TLSF_ALIGN);
  if (granules * TLSF_ALIGN > TLSF_MAX_LENGTH) {
    throw new RangeError(
      `Cannot ${verb} of ${length} bytes: the largest heap is ${TLSF_MAX_LENGTH} bytes`,
    );
  }
  if (offset + length > buffer.byteLength) {
    throw new RangeError(
      `Cannot ${verb} over [${offset}, ${
        offset + length
      }): it ends past the buffer of ${buffer.byteLength} bytes`,
    );
  }
  return granules;
}

/**
 * A TLSF heap over `[offset, offset + length)` of an `ArrayBuffer`. Every piece of state lives in
 * that region, so instances over different mappings of the same memory share one heap; the
 * caller serialises mutations (the store holds an exclusive file lock).
 *
 * @example Format a heap, then attach to it from a second instance
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tlsf } from "./tlsf.ts";
 *
 * const buffer = new ArrayBuffer(1 << 16);
 * const writer = Tlsf.format(buffer, 0, 1 << 16);
 * const at = writer.alloc(64);
 * const reader = Tlsf.attach(buffer, 0, 1 << 16);
 * assert.equal(reader.usableSize(at), 64);
 * reader.free(at);
 * assert.equal(writer.stats().usedBlocks, 0);
 * ```
 */
export class Tlsf {
  /** Absolute byte offset of the region in the buffer. */
  readonly offset: number;
  /** Region length in bytes, rounded down to a multiple of 4. */
  readonly length: number;

  #u32: Uint32Array;
  /** Granule of the sentinel block; blocks live in [#control, #end). */
  #end: number;
  #control: number;
  #flCount: number;
  /** Word index of the first list head. */
  #heads: number;
  #maxSize: number;

  private constructor(buffer: ArrayBufferLike, offset: number, geometry: Geometry) {
    this.offset = offset;
    this.length = geometry.granules * TLSF_ALIGN;
    this.#u32 = new Uint32Array(buffer, offset, geometry.granules);
    this.#end = geometry.granules - 1;
    this.#control = geometry.control;
    this.#flCount = geometry.flCount;
    this.#heads = W_SL_MAPS + geometry.flCount;
    this.#maxSize = (this.#end - this.#control - 1) * TLSF_ALIGN;
  }

  /**
   * Formats `[offset, offset + length)` of `buffer` as an empty heap: one free block.
   *
   * @param buffer The buffer that holds the region (an `ArrayBuffer` or `SharedArrayBuffer`).
   * @param offset Byte offset of the region; a multiple of 4.
   * @param length Region length in bytes; rounded down to a multiple of 4.
   * @returns The heap.
   * @throws {TypeError} If `buffer` is not an `ArrayBuffer`.
   * @throws {RangeError} If the region is misaligned, ends past the buffer, is smaller than
   * {@linkcode TLSF_MIN_LENGTH} or larger than {@linkcode TLSF_MAX_LENGTH}.
   *
   * @example Format a heap in the middle of a buffer
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(8192), 1024, 4099);
   * assert.equal(heap.length, 4096);
   * assert.equal(heap.stats().freeBlocks, 1);
   * ```
   */
  static format(buffer: ArrayBufferLike, offset: number, length: number): Tlsf {
    const geometry = geometryOf(checkRegion("format a heap", buffer, offset, length));
    if (geometry.granules < geometry.control + MIN_BLOCK + 1) {
      throw new RangeError(
        `Cannot format a heap of ${length} bytes: the region must hold at least ${TLSF_MIN_LENGTH} bytes`,
      );
    }
    const heap = new Tlsf(buffer, offset, geometry);
    heap.reset();
    return heap;
  }

  /**
   * Attaches to a heap formatted earlier, maybe by another process through another mapping.
   * Checks the magic number, the version and the stored region length; never writes.
   *
   * @param buffer The buffer that holds the region.
   * @param offset Byte offset of the region; a multiple of 4.
   * @param length Region length in bytes, as given to {@linkcode Tlsf.format}.
   * @returns The heap.
   * @throws {TypeError} If `buffer` is not an `ArrayBuffer`.
   * @throws {RangeError} If the region is misaligned, ends past the buffer or is too large.
   * @throws {Error} If no heap is formatted there, or one of another version or length.
   *
   * @example Attach through a copy of the bytes
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const buffer = new ArrayBuffer(4096);
   * const at = Tlsf.format(buffer, 0, 4096).alloc(10);
   * const copy = Tlsf.attach(buffer.slice(0), 0, 4096);
   * assert.equal(copy.usableSize(at), 12);
   * assert.throws(() => Tlsf.attach(new ArrayBuffer(4096), 0, 4096), /no heap is formatted/);
   * ```
   */
  static attach(buffer: ArrayBufferLike, offset: number, length: number): Tlsf {
    const geometry = geometryOf(checkRegion("attach to a heap", buffer, offset, length));
    const where = `Cannot attach to the heap at offset ${offset}`;
    if (geometry.granules * TLSF_ALIGN < TLSF_MIN_LENGTH) {
      throw new RangeError(`${where}: a region of ${length} bytes cannot hold a heap`);
    }
    const header = new Uint32Array(buffer, offset, W_SL_MAPS);
    const magic = header[W_MAGIC]!;
    if (magic !== MAGIC) {
      throw new Error(`${where}: no heap is formatted there (magic ${hex(magic)})`);
    }
    const version = header[W_VERSION]!;
    if (version !== VERSION) {
      throw new Error(`${where}: the heap has layout version ${version}, not ${VERSION}`);
    }
    const granules = header[W_GRANULES]!;
    if (granules !== geometry.granules) {
      throw new Error(
        `${where}: the heap was formatted for ${granules * TLSF_ALIGN} bytes, not ${
          geometry.granules * TLSF_ALIGN
        }`,
      );
    }
    if (header[W_FL_COUNT] !== geometry.flCount || header[W_CONTROL] !== geometry.control) {
      throw new Error(`${where}: the control block does not match a heap of ${length} bytes`);
    }
    return new Tlsf(buffer, offset, geometry);
  }

  /**
   * The largest payload {@linkcode Tlsf.alloc} accepts: the whole empty heap as one block.
   *
   * @returns Bytes.
   *
   * @example Refuse a value that can never fit
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * assert.throws(() => heap.alloc(heap.maxSize + 1), RangeError);
   * ```
   */
  get maxSize(): number {
    return this.#maxSize;
  }

  /**
   * Formats the region again, in place: every block is lost. Crash-safe in that the magic
   * number is cleared first and written last.
   *
   * @example Empty a heap
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * heap.alloc(100);
   * heap.reset();
   * assert.equal(heap.stats().usedBlocks, 0);
   * ```
   */
  reset(): void {
    const u32 = this.#u32;
    const control = this.#control;
    const end = this.#end;
    u32[W_MAGIC] = 0;
    u32.fill(0, W_VERSION, control);
    u32[W_VERSION] = VERSION;
    u32[W_GRANULES] = end + 1;
    u32[W_FL_COUNT] = this.#flCount;
    u32[W_CONTROL] = control;
    const size = end - control;
    u32[control] = size * 4 + FREE;
    u32[end] = 4 + PREV_FREE;
    u32[end - 1] = control;
    this.#insert(control, size);
    u32[W_FREE_GRANULES] = size;
    u32[W_FREE_BLOCKS] = 1;
    u32[W_USED_BLOCKS] = 0;
    u32[W_MAGIC] = MAGIC;
  }

  /**
   * Allocates a block of at least `size` bytes. O(1): no list is searched, except that when
   * the good-fit search finds nothing, the first few blocks of the request's own size class are
   * tried before giving up.
   *
   * @param size Payload bytes, an integer from 1 to {@linkcode Tlsf.maxSize}.
   * @returns Absolute byte offset of the payload in the buffer, a multiple of 4; or
   * {@linkcode NO_ROOM} when no free block fits.
   * @throws {RangeError} If `size` is not an integer from 1 to {@linkcode Tlsf.maxSize}.
   *
   * @example Allocate until the heap is full
   * ```ts
   * import assert from "node:assert/strict";
   * import { NO_ROOM, Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * let blocks = 0;
   * while (heap.alloc(100) !== NO_ROOM) blocks++;
   * assert.ok(blocks > 10);
   * ```
   */
  alloc(size: number): number {
    if (!(size >= 1 && size <= this.#maxSize && Math.floor(size) === size)) {
      throw new RangeError(
        `Cannot allocate ${size} bytes: the size must be an integer from 1 to ${this.#maxSize}`,
      );
    }
    const u32 = this.#u32;
    const need = Math.max(MIN_BLOCK, Math.floor((size + 3) / 4) + 1);
    // Good fit: round the request up to the next class boundary, so that every block of the
    // class found fits.
    let fl: number;
    let sl: number;
    if (need < SL_COUNT) {
      fl = 0;
      sl = need;
    } else {
      const rounded = need + (1 << (26 - Math.clz32(need))) - 1;
      const shift = 26 - Math.clz32(rounded);
      fl = shift + 1;
      sl = (rounded >>> shift) & (SL_COUNT - 1);
    }
    let slMap = fl < this.#flCount ? u32[W_SL_MAPS + fl]! & (-1 << sl) : 0;
    if (slMap === 0) {
      const flMap = fl < this.#flCount ? u32[W_FL_MAP]! & (-1 << (fl + 1)) : 0;
      if (flMap === 0) return this.#allocFallback(need);
      fl = 31 - Math.clz32(flMap & -flMap);
      slMap = u32[W_SL_MAPS + fl]!;
    }
    sl = 31 - Math.clz32(slMap & -slMap);
    // Pop the head of list (fl, sl).
    const list = this.#heads + fl * SL_COUNT + sl;
    const block = u32[list]!;
    this.#checkFree(block, need);
    const next = u32[block + 1]!;
    this.#checkLink(next);
    if (u32[block + 2] !== 0 || (next !== 0 && u32[next + 2] !== block)) {
      this.#brokenList(block);
    }
    u32[list] = next;
    if (next !== 0) {
      u32[next + 2] = 0;
    } else {
      const map = u32[W_SL_MAPS + fl]! & ~(1 << sl);
      u32[W_SL_MAPS + fl] = map;
      if (map === 0) u32[W_FL_MAP] = u32[W_FL_MAP]! & ~(1 << fl);
    }
    return this.#take(block, need);
  }

  /** Last resort when no class above the request has a block: the request's own class. */
  #allocFallback(need: number): number {
    const u32 = this.#u32;
    if (need < SL_COUNT || firstLevel(need) >= this.#flCount) return NO_ROOM;
    let block = u32[this.#heads + classOf(need)]!;
    for (let i = 0; i < FALLBACK_SCAN && block !== 0; i++) {
      this.#checkFree(block, 1);
      const size = u32[block]! >>> 2;
      if (size >= need) {
        this.#unlink(block, size);
        return this.#take(block, need);
      }
      block = u32[block + 1]!;
    }
    return NO_ROOM;
  }

  /**
   * Throws unless `block` is a free block of at least `need` granules inside the heap, whose
   * boundary tag (its footer, before the next block's header) agrees: a free list damaged by a stray write
   * (or a corrupt segment) is caught before anything is handed out or written through it.
   * `rebuild()` repairs the lists.
   */
  #checkFree(block: number, need: number): void {
    const u32 = this.#u32;
    const word = u32[block]!;
    const size = word >>> 2;
    const after = block + size;
    if (
      !(block >= this.#control && block < this.#end) || (word & FREE) === 0 || size < need ||
      after > this.#end || (u32[after]! & PREV_FREE) === 0 || u32[after - 1] !== block
    ) {
      throw new Error(`Heap corrupt: a free list holds ${block}, which is not a free block`);
    }
  }

  #brokenList(block: number): never {
    throw new Error(`Heap corrupt: the free list links around ${block} do not agree`);
  }

  /** Throws unless `block` is 0 (no block) or a granule inside the heap. */
  #checkLink(block: number): void {
    if (block !== 0 && !(block >= this.#control && block < this.#end)) {
      throw new Error(`Heap corrupt: a free list links to ${block}, outside the heap`);
    }
  }

  /** Turns free block `block`, already unlinked, into a used block of `need` granules. */
  #take(block: number, need: number): number {
    const u32 = this.#u32;
    const word = u32[block]!;
    const size = word >>> 2;
    const rest = size - need;
    if (rest >= MIN_BLOCK) {
      // Crash order: remainder header (inside the free block's payload), then shrink + mark
      // used in one store, then the footer (the remainder's now), then the lists.
      const remainder = block + need;
      u32[remainder] = rest * 4 + FREE;
      u32[block] = need * 4 + (word & PREV_FREE);
      u32[block + size - 1] = remainder;
      this.#insert(remainder, rest);
      u32[W_FREE_GRANULES] = u32[W_FREE_GRANULES]! - need;
    } else {
      u32[block] = word - FREE;
      const next = block + size;
      u32[next] = u32[next]! & ~PREV_FREE;
      u32[W_FREE_GRANULES] = u32[W_FREE_GRANULES]! - size;
      u32[W_FREE_BLOCKS] = u32[W_FREE_BLOCKS]! - 1;
    }
    u32[W_USED_BLOCKS] = u32[W_USED_BLOCKS]! + 1;
    return this.offset + (block + 1) * TLSF_ALIGN;
  }

  /**
   * Frees a block returned by {@linkcode Tlsf.alloc} and merges it with free neighbours. O(1);
   * the offset is checked cheaply (bounds, alignment, header, free bit, the neighbours'
   * boundary tags) and the heap is left untouched when a check fails. A double free is always
   * caught while the block's old header survives (the free bit is set before any merge); an
   * offset whose stale header was swallowed by a later allocation or by `rebuild()` can pass
   * these checks, as with any allocator that does not walk.
   *
   * @param offset Absolute byte offset of the payload, as {@linkcode Tlsf.alloc} returned it.
   * @throws {RangeError} If `offset` is outside the heap, misaligned, not the start of a used
   * block, or already free.
   *
   * @example Free a block, and refuse to free it twice
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * const at = heap.alloc(32);
   * heap.free(at);
   * assert.throws(() => heap.free(at), /already free/);
   * ```
   */
  free(offset: number): void {
    const block = this.#usedBlockAt(offset, 0);
    const u32 = this.#u32;
    const word = u32[block]!;
    const freed = word >>> 2;
    let size = freed;
    let freeBlocks = u32[W_FREE_BLOCKS]! + 1;
    // Crash order: flip the free bit (one store), grow over a free next block (one store),
    // let a free previous block grow over this one (one store), then boundary tags, then lists.
    u32[block] = word + FREE;
    const nextWord = u32[block + size]!;
    if ((nextWord & FREE) !== 0) {
      const nextSize = nextWord >>> 2;
      this.#unlink(block + size, nextSize);
      size += nextSize;
      u32[block] = size * 4 + (word & PREV_FREE) + FREE;
      freeBlocks--;
    }
    let merged = block;
    if ((word & PREV_FREE) !== 0) {
      const prev = u32[block - 1]!;
      const prevWord = u32[prev]!;
      const prevSize = prevWord >>> 2;
      this.#unlink(prev, prevSize);
      size += prevSize;
      u32[prev] = size * 4 + (prevWord & (FREE | PREV_FREE));
      merged = prev;
      freeBlocks--;
    }
    const after = merged + size;
    u32[after - 1] = merged;
    u32[after] = u32[after]! | PREV_FREE;
    this.#insert(merged, size);
    u32[W_FREE_GRANULES] = u32[W_FREE_GRANULES]! + freed;
    u32[W_FREE_BLOCKS] = freeBlocks;
    u32[W_USED_BLOCKS] = u32[W_USED_BLOCKS]! - 1;
  }

  /**
   * Usable payload bytes of a used block: at least the size requested from
   * {@linkcode Tlsf.alloc}, a multiple of 4.
   *
   * @param offset Absolute byte offset of the payload.
   * @returns Bytes the caller may use from `offset`.
   * @throws {RangeError} If `offset` is not the payload of a used block.
   *
   * @example Round a request up to the granule
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * assert.equal(heap.usableSize(heap.alloc(13)), 16);
   * ```
   */
  usableSize(offset: number): number {
    const block = this.#usedBlockAt(offset, 1);
    return ((this.#u32[block]! >>> 2) - 1) * TLSF_ALIGN;
  }

  /** Validates a payload offset of a used block and returns its header granule. */
  #usedBlockAt(offset: number, op: 0 | 1): number {
    const rel = offset - this.offset;
    const end = this.#end;
    if (!(rel >= (this.#control + 1) * TLSF_ALIGN && rel < end * TLSF_ALIGN)) {
      throw this.#badOffset(
        op,
        offset,
        `it is outside the heap's payloads [${this.offset + (this.#control + 1) * TLSF_ALIGN}, ${
          this.offset + end * TLSF_ALIGN
        })`,
      );
    }
    if (rel % TLSF_ALIGN !== 0) throw this.#badOffset(op, offset, "it is not a multiple of 4");
    const u32 = this.#u32;
    const block = rel / TLSF_ALIGN - 1;
    const word = u32[block]!;
    if ((word & FREE) !== 0) {
      throw this.#badOffset(
        op,
        offset,
        op === 0 ? "the block is already free" : "the block is free",
      );
    }
    const size = word >>> 2;
    const next = block + size;
    if (size < MIN_BLOCK || next > end) {
      throw this.#badOffset(op, offset, "no block starts there (bad header)");
    }
    const nextWord = u32[next]!;
    const nextSize = nextWord >>> 2;
    if ((nextWord & PREV_FREE) !== 0 || nextSize === 0 || nextSize > end + 1 - next) {
      throw this.#badOffset(op, offset, "no block starts there (the next header disagrees)");
    }
    if ((word & PREV_FREE) !== 0) {
      const prev = u32[block - 1]!;
      const prevWord = prev >= this.#control && prev < block ? u32[prev]! : 0;
      if ((prevWord & FREE) === 0 || prevWord >>> 2 !== block - prev) {
        throw this.#badOffset(op, offset, "no block starts there (the previous block disagrees)");
      }
    }
    return block;
  }

  #badOffset(op: 0 | 1, offset: number, reason: string): RangeError {
    const verb = op === 0 ? "free" : "get the usable size of";
    return new RangeError(`Cannot ${verb} offset ${offset}: ${reason}`);
  }

  /** Pushes free block `block` of `size` granules on the head of its list. */
  #insert(block: number, size: number): void {
    const u32 = this.#u32;
    const index = classOf(size);
    const list = this.#heads + index;
    const head = u32[list]!;
    if (head !== 0) {
      this.#checkFree(head, 1);
      if (u32[head + 2] !== 0) this.#brokenList(head);
    }
    u32[block + 1] = head;
    u32[block + 2] = 0;
    if (head !== 0) u32[head + 2] = block;
    u32[list] = block;
    const fl = index >>> SL_LOG2;
    u32[W_SL_MAPS + fl] = u32[W_SL_MAPS + fl]! | (1 << (index & (SL_COUNT - 1)));
    u32[W_FL_MAP] = u32[W_FL_MAP]! | (1 << fl);
  }

  /** Takes free block `block` of `size` granules out of its list. */
  #unlink(block: number, size: number): void {
    const u32 = this.#u32;
    const next = u32[block + 1]!;
    const prev = u32[block + 2]!;
    // Safe unlinking: both neighbours in the list must point back at the block.
    if (next !== 0) {
      this.#checkLink(next);
      if (u32[next + 2] !== block) this.#brokenList(block);
    }
    if (prev !== 0) {
      this.#checkLink(prev);
      if (u32[prev + 1] !== block) this.#brokenList(block);
    } else if (u32[this.#heads + classOf(size)] !== block) this.#brokenList(block);
    if (next !== 0) u32[next + 2] = prev;
    if (prev !== 0) {
      u32[prev + 1] = next;
    } else {
      const index = classOf(size);
      u32[this.#heads + index] = next;
      if (next === 0) {
        const fl = index >>> SL_LOG2;
        const map = u32[W_SL_MAPS + fl]! & ~(1 << (index & (SL_COUNT - 1)));
        u32[W_SL_MAPS + fl] = map;
        if (map === 0) u32[W_FL_MAP] = u32[W_FL_MAP]! & ~(1 << fl);
      }
    }
  }

  /**
   * Walks every block in address order by the size in each header. Stops, without throwing, at
   * the first header whose size is out of bounds. The sentinel that ends the heap is not
   * yielded.
   *
   * @returns An iterator of `{ offset, size, free }`: payload offset, payload bytes, state.
   *
   * @example List the blocks
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * const at = heap.alloc(24);
   * const [first, rest] = [...heap.blocks()];
   * assert.deepEqual(first, { offset: at, size: 24, free: false });
   * assert.equal(rest?.free, true);
   * ```
   */
  *blocks(): IterableIterator<TlsfBlock> {
    const u32 = this.#u32;
    const end = this.#end;
    let block = this.#control;
    while (block < end) {
      const word = u32[block] ?? 0;
      const size = word >>> 2;
      if (size < MIN_BLOCK || size > end - block) return;
      yield {
        offset: this.offset + (block + 1) * TLSF_ALIGN,
        size: (size - 1) * TLSF_ALIGN,
        free: (word & FREE) !== 0,
      };
      block += size;
    }
  }

  /**
   * Payload bytes in free blocks, read from the control block in O(1) (the same figure as
   * `stats().free`, without looking for the largest free block).
   *
   * @example Free bytes shrink as blocks are taken
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * const before = heap.freeBytes;
   * heap.alloc(100);
   * assert.ok(heap.freeBytes < before);
   * assert.equal(heap.freeBytes, heap.stats().free);
   * ```
   */
  get freeBytes(): number {
    const u32 = this.#u32;
    return (u32[W_FREE_GRANULES]! - u32[W_FREE_BLOCKS]!) * TLSF_ALIGN;
  }

  /**
   * Heap figures, from the counters in the control block; the largest free block comes from the
   * highest non-empty size class.
   *
   * @returns Used, free and overhead bytes (they add up to `capacity`), block counts,
   * the largest free payload and the fragmentation `1 - largestFree / free`.
   *
   * @example Read the figures of an empty heap
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const heap = Tlsf.format(new ArrayBuffer(4096), 0, 4096);
   * const stats = heap.stats();
   * assert.equal(stats.used, 0);
   * assert.equal(stats.free, heap.maxSize);
   * assert.equal(stats.used + stats.free + stats.overhead, stats.capacity);
   * ```
   */
  stats(): TlsfStats {
    const u32 = this.#u32;
    const freeGranules = u32[W_FREE_GRANULES]!;
    const freeBlocks = u32[W_FREE_BLOCKS]!;
    const usedBlocks = u32[W_USED_BLOCKS]!;
    const free = (freeGranules - freeBlocks) * TLSF_ALIGN;
    const overhead = (this.#control + 1 + freeBlocks + usedBlocks) * TLSF_ALIGN;
    const largestFree = this.#largestFree(freeBlocks);
    return {
      used: this.length - free - overhead,
      free,
      largestFree,
      usedBlocks,
      freeBlocks,
      fragmentation: free > 0 ? 1 - largestFree / free : 0,
      overhead,
      capacity: this.length,
    };
  }

  /** Payload bytes of the largest block in the highest non-empty list; bounded, never throws. */
  #largestFree(freeBlocks: number): number {
    const u32 = this.#u32;
    const flMap = u32[W_FL_MAP]!;
    if (flMap === 0) return 0;
    const fl = 31 - Math.clz32(flMap);
    if (fl >= this.#flCount) return 0;
    const slMap = u32[W_SL_MAPS + fl]!;
    if (slMap === 0) return 0;
    let block = u32[this.#heads + fl * SL_COUNT + 31 - Math.clz32(slMap)]!;
    let largest = 0;
    for (let i = 0; i <= freeBlocks && block >= this.#control && block < this.#end; i++) {
      const size = u32[block]! >>> 2;
      if (size > largest) largest = size;
      block = u32[block + 1]!;
    }
    return largest > 0 ? (largest - 1) * TLSF_ALIGN : 0;
  }

  /**
   * Checks every invariant of the heap: the control block, the walk by block sizes (sizes in
   * bounds, ending exactly at the sentinel), boundary tags, no two adjacent free blocks, every
   * free block in its own list exactly once, no used block or cycle in a list, bitmaps and
   * counters. Never throws and never loops: every loop is bounded by the region.
   *
   * @returns Human-readable problems (at most 200); empty when the heap is consistent.
   *
   * @example Check a heap
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const buffer = new ArrayBuffer(4096);
   * const heap = Tlsf.format(buffer, 0, 4096);
   * assert.deepEqual(heap.verify(), []);
   * new Uint32Array(buffer)[0] = 0;
   * assert.match(heap.verify()[0]!, /magic/);
   * ```
   */
  verify(): string[] {
    const problems: string[] = [];
    const report = (problem: string): void => {
      if (problems.length < MAX_PROBLEMS) problems.push(problem);
      else if (problems.length === MAX_PROBLEMS) problems.push("More problems were not listed");
    };
    const u32 = this.#u32;
    const end = this.#end;
    const control = this.#control;
    const flCount = this.#flCount;
    const at = (block: number): number => this.offset + (block + 1) * TLSF_ALIGN;
    const read = (word: number): number => u32[word] ?? 0;

    const expected: [number, number, string][] = [
      [W_MAGIC, MAGIC, "magic"],
      [W_VERSION, VERSION, "version"],
      [W_GRANULES, end + 1, "region granule count"],
      [W_FL_COUNT, flCount, "first-level count"],
      [W_CONTROL, control, "control block granule count"],
    ];
    for (const [word, value, name] of expected) {
      if (read(word) !== value) {
        report(`The control block's ${name} is ${hex(read(word))}, not ${hex(value)}`);
      }
    }

    // The walk by block sizes.
    const freeSeen = new Map<number, number>();
    let block = control;
    let prev = 0;
    let prevFree = false;
    let freeGranules = 0;
    let usedBlocks = 0;
    let walked = true;
    while (block < end) {
      const word = read(block);
      const size = word >>> 2;
      if (size < MIN_BLOCK || size > end - block) {
        report(
          `Block at offset ${at(block)} has a size of ${size} granules, outside ${MIN_BLOCK}..${
            end - block
          } (the walk stops there)`,
        );
        walked = false;
        break;
      }
      const free = (word & FREE) !== 0;
      this.#checkTags(block, word, prev, prevFree, report);
      if (free && prevFree) {
        report(`Free blocks at offsets ${at(prev)} and ${at(block)} are adjacent but not merged`);
      }
      if (free) {
        freeSeen.set(block, 0);
        freeGranules += size;
      } else {
        usedBlocks++;
      }
      prev = block;
      prevFree = free;
      block += size;
    }
    if (walked) {
      const word = read(end);
      if (word >>> 2 !== 1 || (word & FREE) !== 0) {
        report(`The end sentinel at offset ${at(end)} has a bad header ${hex(word)}`);
      }
      this.#checkTags(end, word, prev, prevFree, report);
    }

    // The free lists and bitmaps.
    const flMap = read(W_FL_MAP);
    if (flCount < 32 && flMap >>> flCount !== 0) {
      report(`The first-level bitmap ${hex(flMap)} has bits past level ${flCount - 1}`);
    }
    for (let fl = 0; fl < flCount; fl++) {
      const slMap = read(W_SL_MAPS + fl);
      if ((slMap !== 0) !== ((flMap >>> fl & 1) === 1)) {
        report(
          `The first-level bitmap bit ${fl} is ${
            flMap >>> fl & 1
          } but second-level bitmap ${fl} is ${hex(slMap)}`,
        );
      }
      for (let sl = 0; sl < SL_COUNT; sl++) {
        const index = fl * SL_COUNT + sl;
        let node = read(this.#heads + index);
        if ((node !== 0) !== ((slMap >>> sl & 1) === 1)) {
          report(
            `Free list ${fl}/${sl} is ${node === 0 ? "empty" : "not empty"} but its bit is ${
              slMap >>> sl & 1
            }`,
          );
        }
        let back = 0;
        for (let steps = 0; node !== 0 && steps <= freeSeen.size; steps++) {
          const seen = freeSeen.get(node);
          if (seen === undefined) {
            report(
              node >= control && node < end
                ? `Free list ${fl}/${sl} holds offset ${at(node)}, which is not a free block`
                : `Free list ${fl}/${sl} holds granule ${node}, outside the heap`,
            );
            break;
          }
          if (seen > 0) {
            report(`Free block at offset ${at(node)} is linked twice (in list ${fl}/${sl})`);
            break;
          }
          freeSeen.set(node, 1);
          const size = read(node) >>> 2;
          if (classOf(size) !== index) {
            report(
              `Free block at offset ${at(node)} of ${size} granules is in list ${fl}/${sl}, not ${
                classOf(size) >>> SL_LOG2
              }/${classOf(size) & (SL_COUNT - 1)}`,
            );
          }
          if (read(node + 2) !== back) {
            report(`Free block at offset ${at(node)} has a bad previous-free link`);
          }
          back = node;
          node = read(node + 1);
        }
      }
    }
    for (const [node, seen] of freeSeen) {
      if (seen === 0) report(`Free block at offset ${at(node)} is in no free list`);
    }

    // The counters.
    if (walked) {
      const counters: [number, number, string][] = [
        [W_FREE_GRANULES, freeGranules, "free granule"],
        [W_FREE_BLOCKS, freeSeen.size, "free block"],
        [W_USED_BLOCKS, usedBlocks, "used block"],
      ];
      for (const [word, value, name] of counters) {
        if (read(word) !== value) {
          report(`The ${name} count is ${read(word)}, but the walk finds ${value}`);
        }
      }
    }
    return problems;
  }

  /** Checks the PREV_FREE flag of `block`, and the footer before it, against the walk. */
  #checkTags(
    block: number,
    word: number,
    prev: number,
    prevFree: boolean,
    report: (problem: string) => void,
  ): void {
    const at = this.offset + (block + 1) * TLSF_ALIGN;
    if (((word & PREV_FREE) !== 0) !== prevFree) {
      report(
        `Block at offset ${at} has its previous-free flag ${
          prevFree ? "clear" : "set"
        } but the previous block is ${prevFree ? "free" : "used"}`,
      );
    } else if (prevFree && this.#u32[block - 1] !== prev) {
      report(
        `Block at offset ${at} links to the previous block at granule ${
          this.#u32[block - 1]
        }, not ${prev}`,
      );
    }
  }

  /**
   * Crash recovery: rebuilds every derived structure from the forward walk by block sizes and
   * the free bit of each header. Rewrites the control block, boundary tags and PREV_FREE
   * flags, merges adjacent free blocks and rebuilds the free lists, bitmaps and counters. If
   * the walk meets a header whose size is out of bounds, the rest of the region becomes one
   * free block (its data is lost). Writes nothing when {@linkcode Tlsf.verify} finds no
   * problem. Never throws; linear in the number of blocks; itself crash-safe (each size change
   * is one store that keeps the walk valid).
   *
   * @returns The problems found (as {@linkcode Tlsf.verify} words them) and fixed.
   *
   * @example Repair scrambled free lists
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tlsf } from "./tlsf.ts";
   *
   * const buffer = new ArrayBuffer(4096);
   * const heap = Tlsf.format(buffer, 0, 4096);
   * heap.alloc(100);
   * new Uint32Array(buffer).fill(0xdead, 8, 40);
   * assert.notDeepEqual(heap.rebuild(), []);
   * assert.deepEqual(heap.verify(), []);
   * ```
   */
  rebuild(): string[] {
    const problems = this.verify();
    if (problems.length === 0) return problems;
    const u32 = this.#u32;
    const end = this.#end;
    const control = this.#control;
    u32[W_MAGIC] = MAGIC;
    u32[W_VERSION] = VERSION;
    u32[W_GRANULES] = end + 1;
    u32[W_FL_COUNT] = this.#flCount;
    u32[W_CONTROL] = control;
    u32.fill(0, W_FREE_GRANULES, control);

    let block = control;
    let prev = 0;
    let prevSize = 0;
    let prevFree = false;
    let freeGranules = 0;
    let freeBlocks = 0;
    let usedBlocks = 0;
    while (block < end) {
      let word = u32[block]!;
      let size = word >>> 2;
      if (size < MIN_BLOCK || size > end - block) {
        const rest = end - block;
        if (rest < MIN_BLOCK && prev !== 0) {
          // Less than a block left: the previous block grows over it.
          prevSize += rest;
          u32[prev] = prevSize * 4 + (u32[prev]! & (FREE | PREV_FREE));
          if (prevFree) freeGranules += rest;
          problems.push(
            `The last ${rest * TLSF_ALIGN} bytes at offset ${
              this.offset + block * TLSF_ALIGN
            } were joined to the block before them`,
          );
          break;
        }
        problems.push(
          `The ${rest * TLSF_ALIGN} bytes from offset ${
            this.offset + block * TLSF_ALIGN
          } became one free block (their contents are lost)`,
        );
        size = rest;
        word = FREE;
        u32[block] = size * 4 + FREE;
      }
      const free = (word & FREE) !== 0;
      if (free && prevFree) {
        // Merge into the free block before (one store; the walk stays valid).
        prevSize += size;
        u32[prev] = prevSize * 4 + FREE;
        freeGranules += size;
        block += size;
        continue;
      }
      if (prevFree) this.#insert(prev, prevSize);
      u32[block] = size * 4 + (free ? FREE : 0) + (prevFree ? PREV_FREE : 0);
      if (prevFree) u32[block - 1] = prev;
      if (free) {
        freeGranules += size;
        freeBlocks++;
      } else {
        usedBlocks++;
      }
      prev = block;
      prevSize = size;
      prevFree = free;
      block += size;
    }
    if (prevFree) this.#insert(prev, prevSize);
    u32[end] = 4 + (prevFree ? PREV_FREE : 0);
    if (prevFree) u32[end - 1] = prev;
    u32[W_FREE_GRANULES] = freeGranules;
    u32[W_FREE_BLOCKS] = freeBlocks;
    u32[W_USED_BLOCKS] = usedBlocks;
    return problems;
  }
}
