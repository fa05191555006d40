/**
 * The memory map of a store: its heap's blocks by offset, used and free, by what they hold, for
 * tools that draw fragmentation (the dashboard, `memalloc stats`).
 *
 * @module
 */
import type { Tlsf } from "./tlsf.ts";
import { ENTRY_TAG, TAG_KIND_MASK, TAG_KIND_SHIFT } from "./layout.ts";

/** What one cell of a {@linkcode StoreMap} holds, in payload bytes. */
export interface StoreMapCell {
  /** Bytes of free blocks. */
  free: number;
  /** Bytes of entries whose value is a string. */
  string: number;
  /** Bytes of entries whose value is a byte array. */
  bytes: number;
  /** Bytes of entries whose value is a number. */
  number: number;
  /** Bytes of entries whose value is JSON text. */
  json: number;
  /** Bytes of entries whose value is CBOR (records included). */
  cbor: number;
  /** Bytes of the store's own blocks: the directory's buckets. */
  other: number;
}

/** One bar of the free-block histogram: blocks of `min` to `max` payload bytes. */
export interface FreeBlockBucket {
  /** Smallest payload size in the bar (a power of two). */
  min: number;
  /** Largest payload size in the bar. */
  max: number;
  /** Free blocks of that size. */
  count: number;
  /** Their payload bytes. */
  bytes: number;
}

/** The heap of a store, block by block, summed into cells of equal length. */
export interface StoreMap {
  /** Offset of the heap in the segment. */
  heapStart: number;
  /** Offset of the heap's end. */
  heapEnd: number;
  /** Bytes of heap each cell covers (the last may cover fewer). */
  cellBytes: number;
  /** The cells, from the heap's start to its end. */
  cells: StoreMapCell[];
  /** Used blocks. */
  usedBlocks: number;
  /** Free blocks. */
  freeBlocks: number;
  /** Payload bytes free. */
  freeBytes: number;
  /** Payload bytes of the largest free block. */
  largestFree: number;
  /** `1 - largestFree / freeBytes`: 0 when the free space is one block, near 1 when it is dust. */
  fragmentation: number;
  /** Free blocks by size, in power-of-two bars from the smallest to the largest seen. */
  freeHistogram: FreeBlockBucket[];
}

type CellKey = Exclude<keyof StoreMapCell, never>;
// By kind; records (kind 6) are CBOR too.
const KIND_KEYS: readonly CellKey[] = [
  "other",
  "string",
  "bytes",
  "cbor",
  "number",
  "json",
  "cbor",
];

/**
 * Walks the heap's blocks and sums them into `cellCount` cells. The caller holds the store's lock,
 * so the walk sees a heap no one is changing.
 *
 * @param heap The store's heap.
 * @param u8 The whole segment, to read each used block's entry tag.
 * @param cellCount How many cells to cut the heap into.
 * @returns The map.
 */
export function mapHeap(heap: Tlsf, u8: Uint8Array, cellCount: number): StoreMap {
  const heapStart = heap.offset;
  const heapEnd = heap.offset + heap.length;
  const cellBytes = Math.max(1, Math.ceil(heap.length / cellCount));
  const cells: StoreMapCell[] = [];
  for (let i = 0; i < Math.ceil(heap.length / cellBytes); i++) {
    cells.push({ free: 0, string: 0, bytes: 0, number: 0, json: 0, cbor: 0, other: 0 });
  }
  const histogram = new Map<number, FreeBlockBucket>();
  let usedBlocks = 0, freeBlocks = 0, freeBytes = 0, largestFree = 0;
  for (const block of heap.blocks()) {
    let key: CellKey;
    if (block.free) {
      key = "free";
      freeBlocks++;
      freeBytes += block.size;
      largestFree = Math.max(largestFree, block.size);
      const bit = 31 - Math.clz32(block.size);
      let bar = histogram.get(bit);
      if (bar === undefined) {
        bar = { min: 2 ** bit, max: 2 ** (bit + 1) - 1, count: 0, bytes: 0 };
        histogram.set(bit, bar);
      }
      bar.count++;
      bar.bytes += block.size;
    } else {
      usedBlocks++;
      const isEntry = u8[block.offset] === ENTRY_TAG;
      key = isEntry
        ? KIND_KEYS[((u8[block.offset + 1] ?? 0) >>> (TAG_KIND_SHIFT - 8)) & TAG_KIND_MASK] ??
          "other"
        : "other";
    }
    // Spread the block over the cells it covers.
    let at = block.offset - heapStart;
    const end = at + block.size;
    while (at < end) {
      const index = Math.floor(at / cellBytes);
      const cellEnd = Math.min(end, (index + 1) * cellBytes);
      const cell = cells[index];
      if (cell === undefined) break;
      cell[key] += cellEnd - at;
      at = cellEnd;
    }
  }
  const freeHistogram = [...histogram.entries()].sort((a, b) => a[0] - b[0]).map(([, bar]) => bar);
  return {
    heapStart,
    heapEnd,
    cellBytes,
    cells,
    usedBlocks,
    freeBlocks,
    freeBytes,
    largestFree,
    fragmentation: freeBytes === 0 ? 0 : 1 - largestFree / freeBytes,
    freeHistogram,
  };
}
