import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import {
  NO_ROOM,
  Tlsf,
  TLSF_ALIGN,
  TLSF_HEADER_SIZE,
  TLSF_MAX_LENGTH,
  TLSF_MIN_LENGTH,
} from "../allocator/tlsf.ts";
import { mulberry32 } from "./_random.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** Log-uniform integer in [min, max]. */
function logUniform(random: () => number, min: number, max: number): number {
  return Math.min(max, Math.floor(min * Math.pow((max + 1) / min, random())));
}

function bytesOf(buffer: ArrayBufferLike): Uint8Array {
  return new Uint8Array(buffer).slice();
}

/** The region's words, as the layout in allocator/tlsf.ts documents them. */
function wordsOf(buffer: ArrayBufferLike, heap: Tlsf): Uint32Array {
  return new Uint32Array(buffer, heap.offset, heap.length / 4);
}

/** Word index (= granule) of the header of the block whose payload is at `payload`. */
function sizeWord(heap: Tlsf, payload: number): number {
  return (payload - heap.offset) / 4 - 1;
}

/** Block size in granules (header included) of a used block. */
function granulesOf(heap: Tlsf, payload: number): number {
  return heap.usableSize(payload) / TLSF_ALIGN + 1;
}

/** First-level count: floor(log2(region granules)) - 3. */
function firstLevels(heap: Tlsf): number {
  return 31 - Math.clz32(heap.length / 4) - 3;
}

/** Control block size in words (= granules): magic ... bitmaps, then 32 heads per first level. */
function controlWords(heap: Tlsf): number {
  return 10 + 33 * firstLevels(heap);
}

/** Free-list index of a block of `s` granules: one class per size under 32, then 32 classes
 * per power of two (first level floor(log2(s)) - 4). */
function classOf(s: number): number {
  if (s < 32) return s;
  const log2 = 31 - Math.clz32(s);
  return (log2 - 4) * 32 + ((s >>> (log2 - 5)) & 31);
}

const FREE = 1;
const PREV_FREE = 2;
const MIN_BLOCK = 4; // granules: header, two links, footer
// Control block words, as allocator/tlsf.ts documents them.
const MAGIC = 0x46534c54;
const VERSION = 2;
const W_FREE_GRANULES = 5;
const W_FREE_BLOCKS = 6;
const W_USED_BLOCKS = 7;
const W_FL_MAP = 8;
const W_SL_MAPS = 10;

/** Fills a block with a pattern derived from `tag`; checks it back. */
function fill(buffer: ArrayBufferLike, offset: number, size: number, tag: number): void {
  new Uint32Array(buffer, offset, size / 4).fill(Math.imul(tag, 0x9e3779b1) >>> 0);
}

function intact(buffer: ArrayBufferLike, offset: number, size: number, tag: number): boolean {
  const words = new Uint32Array(buffer, offset, size / 4);
  const value = Math.imul(tag, 0x9e3779b1) >>> 0;
  for (let i = 0; i < words.length; i++) if (words[i] !== value) return false;
  return true;
}

function hexOf(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

function emptyHeap(size = 1 << 16): { buffer: ArrayBuffer; heap: Tlsf } {
  const buffer = new ArrayBuffer(size);
  return { buffer, heap: Tlsf.format(buffer, 0, size) };
}

function expectBlocks(heap: Tlsf, expected: [number, number, boolean][]): void {
  assert.deepEqual(
    [...heap.blocks()].map((b) => [b.offset, b.size, b.free]),
    expected,
  );
}

// ---------------------------------------------------------------------------------------------
// format / attach

test("Tlsf.format makes one free block that covers the region", () => {
  const { buffer, heap } = emptyHeap();
  const stats = heap.stats();
  assert.equal(stats.capacity, 1 << 16);
  assert.equal(stats.used, 0);
  assert.equal(stats.usedBlocks, 0);
  assert.equal(stats.freeBlocks, 1);
  assert.equal(stats.free, heap.maxSize);
  assert.equal(stats.largestFree, heap.maxSize);
  assert.equal(stats.fragmentation, 0);
  assert.equal(stats.used + stats.free + stats.overhead, stats.capacity);
  assert.equal(controlWords(heap) * 4, 1492, "the control block of a 64 KiB heap");
  assert.equal(stats.overhead, controlWords(heap) * 4 + 2 * TLSF_HEADER_SIZE);
  assert.equal(heap.maxSize, (1 << 16) - 1492 - 4 - 4);
  const blocks = [...heap.blocks()];
  assert.equal(blocks.length, 1);
  assert.deepEqual(blocks[0], {
    offset: stats.overhead - TLSF_HEADER_SIZE,
    size: heap.maxSize,
    free: true,
  });
  assert.deepEqual(heap.verify(), []);
  // The words, as the layout documents them.
  const words = wordsOf(buffer, heap);
  const control = controlWords(heap);
  const end = (1 << 16) / 4 - 1;
  const size = end - control;
  assert.deepEqual(
    [...words.subarray(0, 8)].map(hexOf),
    [MAGIC, VERSION, 1 << 14, firstLevels(heap), control, size, 1, 0].map(hexOf),
  );
  const index = classOf(size);
  assert.equal(hexOf(words[W_FL_MAP]!), hexOf(1 << (index >>> 5)));
  assert.equal(hexOf(words[W_SL_MAPS + (index >>> 5)]!), hexOf(1 << (index & 31)));
  assert.equal(words[W_SL_MAPS + firstLevels(heap) + index], control, "the list head");
  assert.equal(hexOf(words[control]!), hexOf(size * 4 + FREE), "the block's header");
  assert.deepEqual([words[control + 1], words[control + 2]], [0, 0], "no next or previous");
  assert.equal(words[end - 1], control, "the footer: the block's own start granule");
  assert.equal(hexOf(words[end]!), hexOf(1 * 4 + PREV_FREE), "the sentinel");
});

test("Tlsf.format rounds the length down to a multiple of 4 and touches nothing outside", () => {
  const buffer = new ArrayBuffer(8192);
  new Uint8Array(buffer).fill(0xee);
  // an offset that is a multiple of 4 but not of 8
  const heap = Tlsf.format(buffer, 1028, 4099);
  assert.equal(heap.offset, 1028);
  assert.equal(heap.length, 4096);
  assert.equal(heap.stats().capacity, 4096);
  const random = mulberry32(9);
  const live: number[] = [];
  for (let i = 0; i < 2000; i++) {
    if (live.length > 0 && random() < 0.5) {
      heap.free(live.splice(Math.floor(random() * live.length), 1)[0]!);
    } else {
      const at = heap.alloc(1 + Math.floor(random() * 300));
      if (at !== NO_ROOM) live.push(at);
    }
  }
  assert.deepEqual(heap.verify(), []);
  const bytes = new Uint8Array(buffer);
  assert.ok(bytes.subarray(0, 1028).every((b) => b === 0xee));
  assert.ok(bytes.subarray(1028 + 4096).every((b) => b === 0xee));
  // attach accepts any length that rounds down to the same granules, and no other
  assert.equal(Tlsf.attach(buffer, 1028, 4099).length, 4096);
  assert.equal(Tlsf.attach(buffer, 1028, 4096).length, 4096);
  assert.throws(() => Tlsf.attach(buffer, 1028, 4100), /formatted for 4096 bytes, not 4100/);
  assert.throws(() => Tlsf.attach(buffer, 1028, 4092), /formatted for 4096 bytes, not 4092/);
});

test("Tlsf.format rejects bad regions with a RangeError or TypeError", () => {
  const buffer = new ArrayBuffer(4096);
  assert.throws(() => Tlsf.format(buffer, 2, 1024), {
    name: "RangeError",
    message: "Cannot format a heap at offset 2: the offset must be a non-negative multiple of 4",
  });
  assert.throws(() => Tlsf.format(buffer, 6, 1024), /multiple of 4/);
  assert.throws(() => Tlsf.format(buffer, -4, 1024), RangeError);
  assert.throws(() => Tlsf.format(buffer, 0.5, 1024), RangeError);
  assert.throws(() => Tlsf.format(buffer, 0, -1), RangeError);
  assert.throws(() => Tlsf.format(buffer, 0, NaN), RangeError);
  for (const short of [TLSF_MIN_LENGTH - 4, TLSF_MIN_LENGTH - 1]) {
    assert.throws(() => Tlsf.format(buffer, 0, short), {
      name: "RangeError",
      message:
        `Cannot format a heap of ${short} bytes: the region must hold at least ${TLSF_MIN_LENGTH} bytes`,
    });
  }
  assert.throws(() => Tlsf.format(buffer, 2048, 4096), {
    name: "RangeError",
    message: "Cannot format a heap over [2048, 6144): it ends past the buffer of 4096 bytes",
  });
  assert.throws(() => Tlsf.format(buffer, 0, TLSF_MAX_LENGTH + 4), {
    name: "RangeError",
    message: `Cannot format a heap of ${
      TLSF_MAX_LENGTH + 4
    } bytes: the largest heap is ${TLSF_MAX_LENGTH} bytes`,
  });
  assert.throws(
    () => Tlsf.format(new Uint8Array(4096) as unknown as ArrayBuffer, 0, 4096),
    { name: "TypeError", message: /must be an ArrayBuffer, not Uint8Array/ },
  );
  assert.throws(() => Tlsf.format(null as unknown as ArrayBuffer, 0, 4096), TypeError);
  assert.ok(new Uint8Array(buffer).every((b) => b === 0), "a refused format writes nothing");
});

test("Tlsf.format accepts the smallest region", () => {
  const buffer = new ArrayBuffer(TLSF_MIN_LENGTH);
  const heap = Tlsf.format(buffer, 0, TLSF_MIN_LENGTH);
  assert.equal(TLSF_MIN_LENGTH, 456);
  assert.equal(controlWords(heap) * 4, 436, "three first levels");
  assert.equal(heap.stats().overhead, 436 + 2 * TLSF_HEADER_SIZE);
  assert.equal(heap.maxSize, (MIN_BLOCK - 1) * 4, "one smallest block");
  const at = heap.alloc(12);
  assert.notEqual(at, NO_ROOM);
  assert.equal(heap.alloc(1), NO_ROOM);
  assert.throws(() => heap.alloc(13), RangeError);
  heap.free(at);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.format works on a SharedArrayBuffer", () => {
  const buffer = new SharedArrayBuffer(4096);
  const heap = Tlsf.format(buffer, 0, 4096);
  const at = heap.alloc(98);
  assert.equal(Tlsf.attach(buffer, 0, 4096).usableSize(at), 100);
});

test("Tlsf.attach sees the heap of another instance over the same buffer", () => {
  const { buffer, heap: first } = emptyHeap();
  const a = first.alloc(100);
  fill(buffer, a, 100, 1);
  const second = Tlsf.attach(buffer, 0, 1 << 16);
  assert.equal(second.usableSize(a), 100);
  const b = second.alloc(200);
  fill(buffer, b, 200, 2);
  assert.equal(first.usableSize(b), 200);
  first.free(a);
  assert.throws(() => second.free(a), /already free/);
  const c = second.alloc(50);
  assert.equal(c, a, "the freed block is reused through the other instance");
  assert.deepEqual(first.stats(), second.stats());
  assert.deepEqual(first.verify(), []);
  assert.ok(intact(buffer, b, 200, 2));
});

test("Tlsf.attach works on a copy of the bytes in another ArrayBuffer at another offset", () => {
  const { buffer, heap } = emptyHeap();
  const live = [heap.alloc(10), heap.alloc(1000), heap.alloc(64), heap.alloc(5000)];
  heap.free(live[2]!);
  live.splice(2, 1);
  live.forEach((at, i) => fill(buffer, at, heap.usableSize(at), i + 1));
  const copy = new ArrayBuffer((1 << 16) + 4096);
  new Uint8Array(copy).set(new Uint8Array(buffer), 4096);
  const moved = Tlsf.attach(copy, 4096, 1 << 16);
  assert.deepEqual(moved.verify(), []);
  assert.deepEqual(
    [...moved.blocks()],
    [...heap.blocks()].map((b) => ({ ...b, offset: b.offset + 4096 })),
  );
  live.forEach((at, i) => {
    assert.equal(moved.usableSize(at + 4096), heap.usableSize(at));
    assert.ok(intact(copy, at + 4096, heap.usableSize(at), i + 1));
  });
  for (const at of live) moved.free(at + 4096);
  assert.equal(moved.stats().freeBlocks, 1);
  assert.deepEqual(moved.verify(), []);
  assert.equal(heap.stats().usedBlocks, 3, "the original is untouched");
});

test("Tlsf.attach rejects an unformatted or foreign region and changes no byte", () => {
  const zeros = new ArrayBuffer(4096);
  assert.throws(() => Tlsf.attach(zeros, 0, 4096), {
    name: "Error",
    message: "Cannot attach to the heap at offset 0: no heap is formatted there (magic 0x00000000)",
  });
  assert.ok(new Uint8Array(zeros).every((b) => b === 0));

  const noise = new ArrayBuffer(4096);
  const random = mulberry32(5);
  const noiseBytes = new Uint8Array(noise);
  for (let i = 0; i < noiseBytes.length; i++) noiseBytes[i] = random() * 256;
  const noiseBefore = bytesOf(noise);
  assert.throws(() => Tlsf.attach(noise, 0, 4096), /no heap is formatted there/);
  assert.deepEqual(new Uint8Array(noise), noiseBefore);

  const { buffer } = emptyHeap(8192);
  const before = bytesOf(buffer);
  assert.throws(() => Tlsf.attach(buffer, 0, 4096), {
    name: "Error",
    message:
      "Cannot attach to the heap at offset 0: the heap was formatted for 8192 bytes, not 4096",
  });
  assert.throws(() => Tlsf.attach(buffer, 4, 4096), /no heap is formatted there/);
  assert.throws(() => Tlsf.attach(buffer, 8, 4096), /no heap is formatted there/);
  assert.throws(() => Tlsf.attach(buffer, 0, TLSF_MIN_LENGTH - 4), {
    name: "RangeError",
    message: `Cannot attach to the heap at offset 0: a region of ${
      TLSF_MIN_LENGTH - 4
    } bytes cannot hold a heap`,
  });
  assert.throws(() => Tlsf.attach(buffer, 0, 100), RangeError);
  assert.throws(() => Tlsf.attach(buffer, 0, 8196), RangeError);
  assert.throws(() => Tlsf.attach(buffer, 2, 4096), /multiple of 4/);
  assert.throws(() => Tlsf.attach(buffer, 3, 4096), RangeError);
  const words = new Uint32Array(buffer);
  const flCount = words[3]!;
  words[1] = 1; // the layout with 8-byte granules
  assert.throws(() => Tlsf.attach(buffer, 0, 8192), /layout version 1, not 2/);
  words[1] = 3;
  assert.throws(() => Tlsf.attach(buffer, 0, 8192), /layout version 3, not 2/);
  words[1] = 2;
  words[3] = 99;
  assert.throws(() => Tlsf.attach(buffer, 0, 8192), /control block does not match/);
  words[3] = flCount;
  assert.deepEqual(new Uint8Array(buffer), before);
});

// ---------------------------------------------------------------------------------------------
// alloc

test("Tlsf.alloc returns aligned payloads inside the region of at least the size asked", () => {
  const { heap } = emptyHeap();
  let previous = 0;
  let previousUsable = 0;
  const sizes = [1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 100, 255, 256, 257, 1000, 4096];
  for (const size of sizes) {
    const at = heap.alloc(size);
    assert.equal(at % TLSF_ALIGN, 0);
    if (previous !== 0) {
      assert.equal(at, previous + previousUsable + TLSF_HEADER_SIZE, "blocks are back to back");
    }
    const usable = heap.usableSize(at);
    // at least one smallest block (12 bytes of payload), else the size rounded up to 4
    assert.equal(usable, Math.max(12, Math.ceil(size / 4) * 4), `usable size of ${size} bytes`);
    assert.ok(at + usable <= heap.offset + heap.length);
    previous = at;
    previousUsable = usable;
  }
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.alloc reuses a free block of exactly the size asked", () => {
  const { heap } = emptyHeap();
  const a = heap.alloc(64);
  const b = heap.alloc(104);
  const c = heap.alloc(64);
  heap.free(b);
  assert.equal(heap.alloc(104), b);
  assert.equal(heap.usableSize(b), 104);
  heap.free(a);
  assert.equal(heap.alloc(61), a, "64 bytes fit 61: the same 17 granules");
  assert.equal(heap.usableSize(a), 64);
  assert.equal(heap.stats().freeBlocks, 1);
  heap.free(c);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.alloc finds an exact fit that the good-fit rounding skips", () => {
  // 504 bytes = 127 granules with the header: rounded up, the request looks in the class
  // from 128 granules, so only the fallback scan of its own class [126, 128) finds the block.
  const { heap } = emptyHeap();
  heap.alloc(64);
  const block = heap.alloc(504);
  assert.equal(granulesOf(heap, block), 127);
  heap.alloc(64);
  heap.alloc(heap.stats().largestFree);
  assert.equal(heap.stats().freeBlocks, 0);
  heap.free(block);
  assert.equal(heap.alloc(504), block);
  heap.free(block);
  assert.equal(heap.alloc(501), block, "501 bytes also take 127 granules");
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.alloc hands out the whole heap in one block", () => {
  const { heap } = emptyHeap();
  const at = heap.alloc(heap.maxSize);
  assert.equal(heap.usableSize(at), heap.maxSize);
  assert.equal(heap.alloc(1), NO_ROOM);
  assert.equal(heap.stats().free, 0);
  assert.equal(heap.stats().fragmentation, 0);
  heap.free(at);
  // maxSize - 15 bytes take 3 granules fewer than the heap: too few for a block of their own
  assert.equal(heap.alloc(heap.maxSize - 15), at);
  assert.equal(heap.usableSize(at), heap.maxSize, "a 3-granule remainder stays in the block");
  assert.equal(heap.stats().freeBlocks, 0);
  assert.deepEqual(heap.verify(), []);
  heap.free(at);
  // maxSize - 16 bytes leave 4 granules, a smallest block with 12 bytes of payload
  assert.equal(heap.alloc(heap.maxSize - 16), at);
  assert.equal(heap.usableSize(at), heap.maxSize - 16);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.equal(heap.stats().largestFree, 12);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.alloc returns NO_ROOM when full and recovers after a free", () => {
  const { heap } = emptyHeap();
  const live: number[] = [];
  for (;;) {
    const at = heap.alloc(1000);
    if (at === NO_ROOM) break;
    live.push(at);
  }
  assert.ok(live.length >= 60);
  assert.ok(heap.stats().largestFree < 1000);
  assert.equal(heap.alloc(1000), NO_ROOM, "NO_ROOM is not sticky, just repeated");
  heap.free(live[10]!);
  assert.equal(heap.alloc(1000), live[10]);
  heap.free(live[20]!);
  heap.free(live[21]!);
  assert.equal(heap.alloc(2000), live[20], "two freed neighbours merge into one block");
  live.splice(21, 1);
  for (const at of live) heap.free(at);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.equal(heap.stats().usedBlocks, 0);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.alloc rejects sizes that are not integers from 1 to maxSize and changes nothing", () => {
  const { buffer, heap } = emptyHeap();
  heap.alloc(100);
  const before = bytesOf(buffer);
  for (
    const size of [
      0,
      -1,
      -4,
      NaN,
      1.5,
      3.999,
      7.999,
      Infinity,
      -Infinity,
      heap.maxSize + 1,
      2 ** 53,
    ]
  ) {
    assert.throws(() => heap.alloc(size), {
      name: "RangeError",
      message:
        `Cannot allocate ${size} bytes: the size must be an integer from 1 to ${heap.maxSize}`,
    });
  }
  assert.throws(() => heap.alloc("16" as unknown as number), RangeError);
  assert.throws(() => heap.alloc(undefined as unknown as number), RangeError);
  assert.deepEqual(new Uint8Array(buffer), before);
});

// ---------------------------------------------------------------------------------------------
// free / usableSize

test("Tlsf.free merges a block with free neighbours on both sides", () => {
  const { heap } = emptyHeap();
  const [a, b, c, d] = [heap.alloc(64), heap.alloc(64), heap.alloc(64), heap.alloc(64)];
  heap.free(a!);
  heap.free(c!);
  assert.equal(heap.stats().freeBlocks, 3);
  heap.free(b!);
  assert.equal(heap.stats().freeBlocks, 2);
  const [first] = heap.blocks();
  assert.deepEqual(first, { offset: a, size: 3 * 64 + 2 * TLSF_HEADER_SIZE, free: true });
  heap.free(d!);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.free rejects a double free and leaves the heap unchanged", () => {
  const { buffer, heap } = emptyHeap();
  const [a, b, c, d] = [heap.alloc(64), heap.alloc(64), heap.alloc(64), heap.alloc(64)];
  heap.free(b!); // alone between used blocks
  heap.free(d!); // merged with the free tail
  heap.free(c!); // merged into b (the previous block) and the tail
  const before = bytesOf(buffer);
  for (const at of [b!, c!, d!]) {
    assert.throws(() => heap.free(at), {
      name: "RangeError",
      message: `Cannot free offset ${at}: the block is already free`,
    });
    assert.throws(() => heap.usableSize(at), {
      name: "RangeError",
      message: `Cannot get the usable size of offset ${at}: the block is free`,
    });
  }
  assert.deepEqual(new Uint8Array(buffer), before);
  heap.free(a!);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.free rejects offsets outside the heap, misaligned or not at a block start", () => {
  const buffer = new ArrayBuffer(1 << 16);
  const heap = Tlsf.format(buffer, 1024, 32768);
  const a = heap.alloc(100);
  const b = heap.alloc(100);
  assert.equal(b, a + 100 + TLSF_HEADER_SIZE);
  new Uint8Array(buffer, a, 100).fill(0);
  const words = new Uint32Array(buffer);
  // fake headers inside b's payload, each a plausible smallest used block: one whose next
  // header (b + 32) is zero; one whose PREV_FREE flag names a, a used block, through the word
  // before it, and whose next header is plausible
  words[(b + 16) / 4] = MIN_BLOCK * 4;
  words[(b + 36) / 4] = sizeWord(heap, a);
  words[(b + 40) / 4] = MIN_BLOCK * 4 + PREV_FREE;
  words[(b + 56) / 4] = MIN_BLOCK * 4;
  // and one of 3 granules, below the smallest block, whose next header is plausible
  words[(b + 60) / 4] = 3 * 4;
  words[(b + 72) / 4] = MIN_BLOCK * 4;
  const before = bytesOf(buffer);
  // 3 blocks: a, b and the free tail
  const first = 1024 + heap.stats().overhead - 3 * TLSF_HEADER_SIZE;
  assert.equal(first, a);
  const end = 1024 + 32768 - TLSF_HEADER_SIZE;
  const outside = `it is outside the heap's payloads [${first}, ${end})`;
  const cases: [number, RegExp | string][] = [
    [0, outside],
    [1024, outside],
    [first - 4, outside],
    [end, outside],
    [1 << 16, outside],
    [-4, outside],
    [NaN, outside],
    [a + 2, "it is not a multiple of 4"],
    [a + 0.5, "it is not a multiple of 4"],
    [a + 4, "no block starts there (bad header)"],
    [a + 100, "no block starts there (bad header)"], // its header would be a's last word
    [b + 20, "no block starts there (the next header disagrees)"],
    [b + 44, "no block starts there (the previous block disagrees)"],
    [b + 64, "no block starts there (bad header)"],
    [first + 4096, /no block starts there/],
  ];
  for (const [offset, reason] of cases) {
    const message = typeof reason === "string"
      ? `Cannot free offset ${offset}: ${reason}`
      : new RegExp(`^Cannot free offset ${offset}: ${reason.source}`);
    assert.throws(() => heap.free(offset), { name: "RangeError", message });
    assert.throws(() => heap.usableSize(offset), RangeError);
  }
  assert.deepEqual(new Uint8Array(buffer), before);
  heap.free(a);
  heap.free(b);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.free accepts a payload whose first 4 bytes were zeroed", () => {
  const { buffer, heap } = emptyHeap();
  const a = heap.alloc(64);
  const b = heap.alloc(64);
  new Uint32Array(buffer, a, 1)[0] = 0;
  new Uint32Array(buffer, b, 1)[0] = 0;
  heap.free(a);
  heap.free(b);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.deepEqual(heap.verify(), []);
});

test("Tlsf.free ignores what a used block keeps in its last 4 bytes, a free block's footer", () => {
  // A used block's payload runs up to the next header, so its last word is the caller's: a
  // value there that looks like a footer must not be taken for one, nor be overwritten.
  const { buffer, heap } = emptyHeap();
  const random = mulberry32(11);
  const words = wordsOf(buffer, heap);
  const live: number[] = [];
  for (let i = 0; i < 60; i++) live.push(heap.alloc(logUniform(random, 1, 600)));
  assert.ok(!live.includes(NO_ROOM));
  const lastWord = (at: number): number => (at - heap.offset + heap.usableSize(at)) / 4 - 1;
  const last = new Map<number, number>();
  live.forEach((at, i) => {
    fill(buffer, at, heap.usableSize(at), at);
    // the start granule of the block itself, of the block before it, or garbage
    const value = [sizeWord(heap, at), sizeWord(heap, live[i - 1] ?? at), 0xffff_ffff][i % 3]!;
    words[lastWord(at)] = value;
    last.set(at, value);
  });
  while (live.length > 0) {
    const at = live.splice(Math.floor(random() * live.length), 1)[0]!;
    heap.free(at);
    assert.deepEqual(heap.verify(), []);
    for (const other of live) {
      assert.equal(words[lastWord(other)], last.get(other), `the last word of ${other}`);
      assert.ok(intact(buffer, other, heap.usableSize(other) - 4, other), `block ${other}`);
    }
  }
  assert.equal(heap.stats().freeBlocks, 1);
  assert.equal(heap.stats().free, heap.maxSize);
});

test("Tlsf.free links a free block after its header and puts its start granule in its last word", () => {
  const { buffer, heap } = emptyHeap();
  const words = wordsOf(buffer, heap);
  const [a, b, c, d, e] = [64, 64, 64, 64, 64].map((size) => heap.alloc(size)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  for (const at of [a, b, c, d, e]) fill(buffer, at, 64, at);
  const [gb, gd, ge] = [sizeWord(heap, b), sizeWord(heap, d), sizeWord(heap, e)];
  assert.equal(granulesOf(heap, b), 17);
  assert.equal(a + 64, b - TLSF_HEADER_SIZE, "a used block's payload runs to the next header");
  const heads = W_SL_MAPS + firstLevels(heap);
  heap.free(b);
  heap.free(d); // the same class as b: pushed in front of it
  assert.equal(hexOf(words[gb]!), hexOf(17 * 4 + FREE));
  assert.equal(words[gb + 16], gb, "b's footer, the word before c's header");
  assert.equal(hexOf(words[gb + 17]!), hexOf(17 * 4 + PREV_FREE), "c's header");
  assert.equal(words[gd + 16], gd, "d's footer");
  assert.equal(hexOf(words[ge]!), hexOf(17 * 4 + PREV_FREE), "e's header");
  assert.equal(words[heads + 17], gd, "the head of list 0/17");
  assert.deepEqual([words[gd + 1], words[gd + 2]], [gb, 0], "d's next and previous links");
  assert.deepEqual([words[gb + 1], words[gb + 2]], [0, gd], "b's next and previous links");
  assert.equal(words[W_SL_MAPS]! & (1 << 17), 1 << 17);
  // between the links and the footer, and in the used blocks, every word is the caller's
  assert.ok(intact(buffer, b + 8, 64 - 12, b));
  assert.ok(intact(buffer, d + 8, 64 - 12, d));
  for (const at of [a, c, e]) assert.ok(intact(buffer, at, 64, at));

  // alloc without a split takes the head, d, and clears e's PREV_FREE flag
  assert.equal(heap.alloc(64), d);
  fill(buffer, d, 64, d); // d's links and footer were the allocator's while it was free
  assert.equal(hexOf(words[gd]!), hexOf(17 * 4));
  assert.equal(hexOf(words[ge]!), hexOf(17 * 4));
  assert.equal(words[heads + 17], gb);
  assert.deepEqual([words[gb + 1], words[gb + 2]], [0, 0]);
  // alloc with a split: the remainder's header inside b, b's old footer now the remainder's
  assert.equal(heap.alloc(20), b);
  assert.equal(hexOf(words[gb]!), hexOf(6 * 4));
  assert.equal(hexOf(words[gb + 6]!), hexOf(11 * 4 + FREE));
  assert.equal(words[gb + 16], gb + 6);
  assert.equal(hexOf(words[gb + 17]!), hexOf(17 * 4 + PREV_FREE), "c's header");
  assert.equal(words[heads + 11], gb + 6);
  assert.equal(words[heads + 17], 0);
  assert.deepEqual(heap.verify(), []);
  // free merges b with the remainder after it
  heap.free(b);
  assert.equal(hexOf(words[gb]!), hexOf(17 * 4 + FREE));
  assert.equal(words[gb + 16], gb);
  assert.equal(words[heads + 11], 0);
  assert.equal(words[heads + 17], gb);
  // and c, freed, grows b over itself: the footer moves to the end of c
  heap.free(c);
  assert.equal(hexOf(words[gb]!), hexOf(34 * 4 + FREE));
  assert.equal(words[gb + 33], gb);
  assert.equal(hexOf(words[gb + 34]!), hexOf(17 * 4 + PREV_FREE), "d's header");
  assert.equal(words[heads + classOf(34)], gb);
  assert.ok(intact(buffer, a, 64, a));
  assert.ok(intact(buffer, d, 64, d));
  assert.deepEqual(heap.verify(), []);
});

// ---------------------------------------------------------------------------------------------
// stats / blocks / reset

test("Tlsf.stats adds up and measures fragmentation", () => {
  const { heap } = emptyHeap();
  const live = Array.from({ length: 20 }, () => heap.alloc(512));
  for (let i = 0; i < live.length; i += 2) heap.free(live[i]!);
  const stats = heap.stats();
  assert.equal(stats.usedBlocks, 10);
  assert.equal(stats.freeBlocks, 11);
  assert.equal(stats.used, 10 * 512);
  assert.equal(stats.used + stats.free + stats.overhead, stats.capacity);
  const tail = heap.maxSize - 20 * (512 + TLSF_HEADER_SIZE);
  assert.equal(stats.largestFree, tail);
  assert.equal(stats.free, tail + 10 * 512);
  assert.ok(Math.abs(stats.fragmentation - (1 - tail / (tail + 10 * 512))) < 1e-12);
  const counted = { used: 0, free: 0 };
  for (const block of heap.blocks()) counted[block.free ? "free" : "used"] += block.size;
  assert.deepEqual(counted, { used: stats.used, free: stats.free });
});

test("Tlsf.blocks stops at a corrupt header without throwing", () => {
  const { buffer, heap } = emptyHeap();
  const a = heap.alloc(64);
  const b = heap.alloc(64);
  heap.alloc(64);
  const words = wordsOf(buffer, heap);
  words[sizeWord(heap, b)] = 0xffff_fffc;
  expectBlocks(heap, [[a, 64, false]]);
  words[sizeWord(heap, b)] = 0;
  expectBlocks(heap, [[a, 64, false]]);
  // 3 granules: below the smallest block (header, two links, footer)
  words[sizeWord(heap, b)] = 3 * 4;
  expectBlocks(heap, [[a, 64, false]]);
  words[sizeWord(heap, b)] = 3 * 4 + FREE;
  expectBlocks(heap, [[a, 64, false]]);
});

test("Tlsf.reset empties the heap", () => {
  const { heap } = emptyHeap();
  for (let i = 0; i < 10; i++) heap.alloc(300);
  heap.reset();
  assert.equal(heap.stats().usedBlocks, 0);
  assert.equal(heap.stats().free, heap.maxSize);
  assert.deepEqual(heap.verify(), []);
});

// ---------------------------------------------------------------------------------------------
// Randomised model test

interface ModelOptions {
  seed: number;
  region: number;
  maxSize: number;
  ops: number;
  /** Probability that an operation allocates rather than frees. */
  allocShare: number;
}

function modelRun({ seed, region, maxSize, ops, allocShare }: ModelOptions): void {
  const random = mulberry32(seed);
  const base = 68; // a multiple of 4, not of 8
  const buffer = new ArrayBuffer(region + 2 * base);
  new Uint8Array(buffer).fill(0xa5);
  let heap = Tlsf.format(buffer, base, region);
  const start = heap.offset;
  const end = heap.offset + heap.length;
  // live blocks: offset -> [usable size, tag]; offsets also in an array for random picks, and
  // sorted by address to check that a new block overlaps neither neighbour
  const live = new Map<number, [number, number]>();
  const offsets: number[] = [];
  const where = new Map<number, number>();
  const sorted: number[] = [];
  const rank = (at: number): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  let tag = 0;
  let noRoom = 0;

  const remove = (at: number): void => {
    const i = where.get(at)!;
    const last = offsets.pop()!;
    if (last !== at) {
      offsets[i] = last;
      where.set(last, i);
    }
    where.delete(at);
    live.delete(at);
    sorted.splice(rank(at), 1);
  };
  const freeOne = (): void => {
    const at = offsets[Math.floor(random() * offsets.length)]!;
    const [usable, t] = live.get(at)!;
    const words = new Uint32Array(buffer, at, usable / 4);
    const value = Math.imul(t, 0x9e3779b1) >>> 0;
    for (let k = 0; k < 8; k++) {
      const i = Math.floor(random() * words.length);
      assert.equal(words[i], value, `block ${at} was overwritten at word ${i}`);
    }
    assert.equal(words[0], value);
    assert.equal(words[words.length - 1], value);
    const scribble = random();
    if (scribble < 0.5) words[0] = 0; // the store zeroes the first 4 bytes before freeing
    // a value in the last word, where a free block keeps its footer, that looks like one
    else if (scribble < 0.75) words[words.length - 1] = (at - heap.offset) / 4 - 1;
    heap.free(at);
    remove(at);
  };
  const checkAll = (op: number): void => {
    assert.deepEqual(heap.verify(), [], `verify after op ${op} (seed ${seed})`);
    let used = 0;
    for (const [at, [usable, t]] of live) {
      assert.ok(intact(buffer, at, usable, t), `block ${at} intact after op ${op}`);
      used += usable;
    }
    const stats = heap.stats();
    assert.equal(stats.used, used);
    assert.equal(stats.usedBlocks, live.size);
    assert.equal(stats.used + stats.free + stats.overhead, stats.capacity);
    for (const block of heap.blocks()) {
      assert.equal(live.has(block.offset), !block.free, `block ${block.offset} state`);
    }
  };

  for (let op = 1; op <= ops; op++) {
    if (offsets.length > 0 && random() >= allocShare) {
      freeOne();
    } else {
      const size = logUniform(random, 1, maxSize);
      const at = heap.alloc(size);
      if (at === NO_ROOM) {
        noRoom++;
        // Only blocks of the request's own size class can be missed.
        const need = Math.max(MIN_BLOCK, Math.ceil(size / 4) + 1);
        const slack = need < 32 ? 0 : 1 << (31 - Math.clz32(need) - 5);
        assert.ok(
          heap.stats().largestFree / 4 + 1 < need + slack,
          `NO_ROOM for ${size} bytes with ${heap.stats().largestFree} bytes free in one block`,
        );
        if (offsets.length > 0) freeOne();
      } else {
        const usable = heap.usableSize(at);
        assert.equal(at % 4, 0);
        // the block takes max(4, ceil(size / 4) + 1) granules, plus a remainder of up to 3
        // granules that is too small for a block of its own
        const need = Math.max(MIN_BLOCK, Math.ceil(size / 4) + 1);
        assert.ok(usable % 4 === 0 && usable >= size, `usable ${usable} for ${size}`);
        assert.ok(usable <= (need - 1 + MIN_BLOCK - 1) * 4, `usable ${usable} for ${size}`);
        assert.ok(at >= start && at + usable <= end, `block ${at} in the region`);
        const i = rank(at);
        const before = sorted[i - 1];
        const after = sorted[i];
        assert.ok(
          before === undefined || before + live.get(before)![0] <= at,
          `block ${at} overlaps the block at ${before}`,
        );
        assert.ok(after === undefined || at + usable <= after, `block ${at} overlaps ${after}`);
        sorted.splice(i, 0, at);
        tag++;
        fill(buffer, at, usable, tag);
        live.set(at, [usable, tag]);
        where.set(at, offsets.length);
        offsets.push(at);
      }
    }
    if (op % 1000 === 0) checkAll(op);
    if (op % 25_000 === 0) heap = Tlsf.attach(buffer, base, region);
  }
  assert.ok(noRoom > 0, "the run reaches exhaustion at least once");
  while (offsets.length > 0) freeOne();
  const stats = heap.stats();
  assert.equal(stats.freeBlocks, 1);
  assert.equal(stats.usedBlocks, 0);
  assert.equal(stats.free, heap.maxSize);
  assert.deepEqual(heap.verify(), []);
  const bytes = new Uint8Array(buffer);
  assert.ok(bytes.subarray(0, base).every((b) => b === 0xa5), "bytes before the region");
  assert.ok(bytes.subarray(base + region).every((b) => b === 0xa5), "bytes after the region");
}

for (
  const options of [
    { seed: 1, region: 1 << 20, maxSize: 1 << 18, ops: 100_000, allocShare: 0.5 },
    { seed: 2, region: 1 << 20, maxSize: 1 << 18, ops: 100_000, allocShare: 0.5 },
    { seed: 3, region: (1 << 18) + 5, maxSize: 2048, ops: 100_000, allocShare: 0.6 },
    { seed: 4, region: 1 << 16, maxSize: 1 << 14, ops: 100_000, allocShare: 0.5 },
    { seed: 5, region: 1 << 22, maxSize: 1 << 16, ops: 100_000, allocShare: 0.55 },
  ]
) {
  test(
    `Tlsf keeps live blocks disjoint and intact over 100,000 random operations (seed ${options.seed}, ${options.region} bytes)`,
    () => modelRun(options),
  );
}

// ---------------------------------------------------------------------------------------------
// verify / rebuild

/** A heap with live blocks of known contents and some free blocks between them. */
function busyHeap(seed: number, region = 1 << 16, maxSize = 2000): {
  buffer: ArrayBuffer;
  heap: Tlsf;
  live: Map<number, number>;
} {
  const buffer = new ArrayBuffer(region);
  const heap = Tlsf.format(buffer, 0, region);
  const random = mulberry32(seed);
  const live = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    if (live.size > 0 && random() < 0.4) {
      const at = [...live.keys()][Math.floor(random() * live.size)]!;
      heap.free(at);
      live.delete(at);
    } else {
      const at = heap.alloc(logUniform(random, 1, maxSize));
      if (at !== NO_ROOM) {
        fill(buffer, at, heap.usableSize(at), at);
        live.set(at, heap.usableSize(at));
      }
    }
  }
  return { buffer, heap, live };
}

function assertLiveIntact(buffer: ArrayBufferLike, heap: Tlsf, live: Map<number, number>): void {
  for (const [at, usable] of live) {
    assert.equal(heap.usableSize(at), usable);
    assert.ok(intact(buffer, at, usable, at), `block ${at} intact`);
  }
  assert.equal(heap.stats().usedBlocks, live.size);
}

/** Allocates and frees a little to show the heap still works. */
function exercise(heap: Tlsf, seed: number): void {
  const random = mulberry32(seed);
  const mine: number[] = [];
  for (let i = 0; i < 300; i++) {
    if (mine.length > 0 && random() < 0.5) {
      heap.free(mine.splice(Math.floor(random() * mine.length), 1)[0]!);
    } else {
      const at = heap.alloc(logUniform(random, 1, 1000));
      if (at !== NO_ROOM) mine.push(at);
    }
  }
  for (const at of mine) heap.free(at);
  assert.deepEqual(heap.verify(), []);
}

test("Tlsf.verify reports garbage in the free lists and bitmaps, and Tlsf.rebuild repairs it", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { buffer, heap, live } = busyHeap(seed);
    assert.ok(heap.stats().freeBlocks > 5);
    const words = wordsOf(buffer, heap);
    const random = mulberry32(seed * 7);
    for (let i = 8; i < controlWords(heap); i++) {
      if (random() < 0.3) words[i] = (random() * 2 ** 32) >>> 0;
    }
    const problems = heap.verify();
    assert.ok(problems.length > 0, `seed ${seed}: verify notices the garbage`);
    assert.deepEqual(heap.rebuild(), problems);
    assert.deepEqual(heap.verify(), []);
    assertLiveIntact(buffer, heap, live);
    exercise(heap, seed);
  }
});

test("Tlsf.verify reports reversed free-list links, and Tlsf.rebuild repairs them", () => {
  const { buffer, heap, live } = busyHeap(42);
  const words = wordsOf(buffer, heap);
  let reversed = 0;
  for (const block of heap.blocks()) {
    if (!block.free) continue;
    const link = (block.offset - heap.offset) / 4;
    const [next, prev] = [words[link]!, words[link + 1]!];
    words[link] = prev;
    words[link + 1] = next;
    reversed++;
  }
  assert.ok(reversed > 5);
  const problems = heap.verify();
  assert.ok(problems.some((p) => /previous-free link|linked twice|not a free block/.test(p)));
  heap.rebuild();
  assert.deepEqual(heap.verify(), []);
  assertLiveIntact(buffer, heap, live);
  exercise(heap, 42);
});

test("Tlsf.verify reports bad boundary tags, unmerged neighbours and wrong counters", () => {
  const { buffer, heap } = emptyHeap();
  const words = wordsOf(buffer, heap);
  const a = heap.alloc(64);
  const b = heap.alloc(64);
  heap.alloc(64);
  heap.free(a);
  words[sizeWord(heap, b)] = words[sizeWord(heap, b)]! & ~PREV_FREE;
  assert.match(heap.verify().join("\n"), /previous-free flag clear but the previous block is free/);
  heap.rebuild();
  // a's footer, the word before b's header
  assert.equal(words[sizeWord(heap, b) - 1], sizeWord(heap, a));
  words[sizeWord(heap, b) - 1] = 12345;
  assert.match(heap.verify().join("\n"), /links to the previous block at granule 12345/);
  heap.rebuild();
  words[sizeWord(heap, b)] = words[sizeWord(heap, b)]! | FREE;
  const problems = heap.verify().join("\n");
  assert.match(problems, /adjacent but not merged/);
  assert.match(problems, /is in no free list/);
  assert.match(problems, /The free block count is 2, but the walk finds 3/);
  heap.rebuild();
  assert.deepEqual(heap.verify(), []);
  expectBlocks(heap, [[a, 64 + 4 + 64, true], [b + 68, 64, false], [
    b + 136,
    heap.maxSize - 3 * 68,
    true,
  ]]);
});

test("Tlsf.alloc and Tlsf.free refuse a free block whose footer disagrees, until Tlsf.rebuild", () => {
  const { buffer, heap } = emptyHeap();
  const words = wordsOf(buffer, heap);
  const [a, b, c] = [heap.alloc(64), heap.alloc(64), heap.alloc(64), heap.alloc(64)];
  heap.free(b!); // alone in its list, between used blocks
  const footer = sizeWord(heap, c!) - 1;
  assert.equal(words[footer], sizeWord(heap, b!));
  words[footer] = sizeWord(heap, a!); // a stray write: the footer names a, a used block
  const before = bytesOf(buffer);
  assert.throws(() => heap.alloc(64), {
    name: "Error",
    message: `Heap corrupt: a free list holds ${sizeWord(heap, b!)}, which is not a free block`,
  });
  assert.throws(() => heap.free(c!), {
    name: "RangeError",
    message: `Cannot free offset ${c}: no block starts there (the previous block disagrees)`,
  });
  assert.throws(() => heap.usableSize(c!), /the previous block disagrees/);
  assert.deepEqual(new Uint8Array(buffer), before, "nothing was written");
  assert.deepEqual(heap.verify(), [
    `Block at offset ${c} links to the previous block at granule ${sizeWord(heap, a!)}, not ${
      sizeWord(heap, b!)
    }`,
  ]);
  heap.rebuild();
  assert.deepEqual(heap.verify(), []);
  assert.equal(words[footer], sizeWord(heap, b!));
  assert.equal(heap.alloc(64), b);
  heap.free(c!);
  assert.deepEqual(heap.verify(), []);
});

/**
 * Crash simulation. A process may die between any two stores of alloc() or free(). rebuild()
 * trusts only the size words (size and free bit) on the walk, and allocator/tlsf.ts documents
 * the order of the stores. Each case replays that documented sequence by hand, store by store:
 * headers at granule g, free-list links at g + 1 and g + 2, footers at g + size - 1, the
 * PREV_FREE flag of the next header, the lists, bitmaps and counters of the control block. It
 * checks that the replay ends in exactly the words of the real operation, and that rebuild()
 * recovers from every prefix of it, with the control block left stale or wiped.
 */
interface CrashCase {
  name: string;
  /** Sizes of the blocks allocated in a row before the tail; the ones listed in `free` freed. */
  sizes: number[];
  free: number[];
  /** The operation: free block `index`, or alloc `size` out of free block `index`. */
  op: { free: number } | { alloc: number; from: number };
}

const crashCases: CrashCase[] = [
  { name: "free, no free neighbour", sizes: [64, 100, 64], free: [], op: { free: 1 } },
  { name: "free, free next", sizes: [64, 100, 300, 64], free: [2], op: { free: 1 } },
  { name: "free, free previous", sizes: [64, 200, 100, 64], free: [1], op: { free: 2 } },
  {
    name: "free, both neighbours free",
    sizes: [64, 200, 100, 300, 64],
    free: [1, 3],
    op: { free: 2 },
  },
  {
    name: "free, both neighbours free, all of them smallest blocks",
    sizes: [1, 12, 4, 12, 64],
    free: [1, 3],
    op: { free: 2 },
  },
  {
    name: "free, two free blocks in the same list",
    sizes: [64, 100, 64, 100, 64, 100, 64],
    free: [1, 5],
    op: { free: 3 },
  },
  {
    name: "free, both neighbours free, in the middle and at the end of one list",
    sizes: [64, 100, 64, 100, 64, 100, 64],
    free: [1, 3, 5],
    op: { free: 2 },
  },
  { name: "free, last block before the free tail", sizes: [64, 100], free: [], op: { free: 1 } },
  { name: "alloc with a split", sizes: [64, 1000, 64], free: [1], op: { alloc: 100, from: 1 } },
  {
    name: "alloc with a split that leaves a smallest block",
    sizes: [64, 1000, 64],
    free: [1],
    op: { alloc: 984, from: 1 },
  },
  {
    name: "alloc without a split (a 3-granule remainder)",
    sizes: [64, 1000, 64],
    free: [1],
    op: { alloc: 988, from: 1 },
  },
  {
    name: "alloc without a split (an exact fit)",
    sizes: [64, 988, 64],
    free: [1],
    op: { alloc: 985, from: 1 },
  },
];

/** Replays stores on a copy of a heap's words, and records them in order. */
class StoreLog {
  readonly stores: [number, number][] = [];
  readonly words: Uint32Array;
  readonly #heads: number;

  constructor(words: Uint32Array, flCount: number) {
    this.words = words;
    this.#heads = W_SL_MAPS + flCount;
  }

  store(index: number, value: number): void {
    this.stores.push([index, value >>> 0]);
    this.words[index] = value;
  }

  /** Takes free block `g` of `size` granules out of its list. */
  unlink(g: number, size: number): void {
    const w = this.words;
    const [next, prev] = [w[g + 1]!, w[g + 2]!];
    if (next !== 0) this.store(next + 2, prev);
    if (prev !== 0) {
      this.store(prev + 1, next);
      return;
    }
    const index = classOf(size);
    this.store(this.#heads + index, next);
    if (next === 0) {
      const fl = index >>> 5;
      const map = w[W_SL_MAPS + fl]! & ~(1 << (index & 31));
      this.store(W_SL_MAPS + fl, map);
      if (map === 0) this.store(W_FL_MAP, w[W_FL_MAP]! & ~(1 << fl));
    }
  }

  /** Pushes free block `g` of `size` granules on the head of its list. */
  insert(g: number, size: number): void {
    const w = this.words;
    const index = classOf(size);
    const head = w[this.#heads + index]!;
    this.store(g + 1, head);
    this.store(g + 2, 0);
    if (head !== 0) this.store(head + 2, g);
    this.store(this.#heads + index, g);
    const fl = index >>> 5;
    this.store(W_SL_MAPS + fl, w[W_SL_MAPS + fl]! | (1 << (index & 31)));
    this.store(W_FL_MAP, w[W_FL_MAP]! | (1 << fl));
  }
}

for (const c of crashCases) {
  test(`Tlsf.rebuild recovers from a crash at every step of ${c.name}`, () => {
    const { buffer, heap } = emptyHeap();
    const at = c.sizes.map((size) => heap.alloc(size));
    const granules = at.map((a) => granulesOf(heap, a));
    at.forEach((a, i) => fill(buffer, a, heap.usableSize(a), i + 1));
    for (const i of c.free) heap.free(at[i]!);
    // the free tail is block number c.sizes.length
    const tail = [...heap.blocks()].at(-1)!;
    at.push(tail.offset);
    granules.push(tail.size / TLSF_ALIGN + 1);
    const words = wordsOf(buffer, heap);
    const header = (i: number): number => sizeWord(heap, at[i]!);
    const isFree = (i: number): boolean => c.free.includes(i) || i === c.sizes.length;
    const before = buffer.slice(0);

    // The documented stores, in order.
    const log = new StoreLog(new Uint32Array(buffer.slice(0)), firstLevels(heap));
    const w = log.words;
    let target: number; // the block the operation is about
    let commit: number; // the store that makes the operation visible to the walk
    if ("free" in c.op) {
      const b = target = c.op.free;
      const g = header(b);
      const word = w[g]!;
      assert.equal(word >>> 2, granules[b]);
      let size = granules[b]!;
      let freeBlocks = w[W_FREE_BLOCKS]! + 1;
      commit = log.stores.length;
      log.store(g, word + FREE); // the free bit
      const nextWord = w[g + size]!;
      assert.equal(g + size, header(b + 1));
      assert.equal((nextWord & FREE) !== 0, isFree(b + 1), "the next block's free bit");
      if (isFree(b + 1)) {
        log.unlink(g + size, granules[b + 1]!);
        size += granules[b + 1]!;
        log.store(g, size * 4 + (word & PREV_FREE) + FREE); // grow over the next block
        freeBlocks--;
      }
      let merged = g;
      assert.equal((word & PREV_FREE) !== 0, isFree(b - 1), "the PREV_FREE flag");
      if (isFree(b - 1)) {
        assert.equal(w[g - 1], header(b - 1), "the previous block's footer before the header");
        const prevWord = w[header(b - 1)]!;
        log.unlink(header(b - 1), granules[b - 1]!);
        size += granules[b - 1]!;
        // the previous block grows over this one
        log.store(header(b - 1), size * 4 + (prevWord & (FREE | PREV_FREE)));
        merged = header(b - 1);
        freeBlocks--;
      }
      log.store(merged + size - 1, merged); // the footer
      log.store(merged + size, w[merged + size]! | PREV_FREE); // the next header's flag
      log.insert(merged, size);
      log.store(W_FREE_GRANULES, w[W_FREE_GRANULES]! + granules[b]!);
      log.store(W_FREE_BLOCKS, freeBlocks);
      log.store(W_USED_BLOCKS, w[W_USED_BLOCKS]! - 1);
    } else {
      const f = target = c.op.from;
      assert.ok(isFree(f));
      const g = header(f);
      const need = Math.max(MIN_BLOCK, Math.ceil(c.op.alloc / 4) + 1);
      const size = granules[f]!;
      const word = w[g]!;
      assert.equal(hexOf(word & ~PREV_FREE), hexOf(size * 4 + FREE));
      log.unlink(g, size);
      if (size - need >= MIN_BLOCK) {
        const remainder = g + need;
        // the remainder's header, still inside the free block (garbage to the walk)
        log.store(remainder, (size - need) * 4 + FREE);
        commit = log.stores.length;
        log.store(g, need * 4 + (word & PREV_FREE)); // shrink and mark used
        log.store(g + size - 1, remainder); // the footer, now the remainder's
        log.insert(remainder, size - need);
        log.store(W_FREE_GRANULES, w[W_FREE_GRANULES]! - need);
      } else {
        commit = log.stores.length;
        log.store(g, word - FREE); // mark used
        log.store(g + size, w[g + size]! & ~PREV_FREE); // the next header's flag
        log.store(W_FREE_GRANULES, w[W_FREE_GRANULES]! - size);
        log.store(W_FREE_BLOCKS, w[W_FREE_BLOCKS]! - 1);
      }
      log.store(W_USED_BLOCKS, w[W_USED_BLOCKS]! + 1);
    }
    const steps = log.stores;

    // The real operation, on a copy: the replay ends in exactly its words.
    const real = buffer.slice(0);
    const realHeap = Tlsf.attach(real, 0, real.byteLength);
    if ("free" in c.op) realHeap.free(at[c.op.free]!);
    else assert.equal(realHeap.alloc(c.op.alloc), at[c.op.from]);
    const realWords = new Uint32Array(real);
    const differ = realWords.findIndex((value, i) => value !== w[i]);
    assert.equal(
      differ,
      -1,
      `word ${differ}: the replay stores ${hexOf(w[differ] ?? 0)}, the operation ${
        hexOf(realWords[differ] ?? 0)
      }`,
    );
    const realBlocks = [...realHeap.blocks()];
    const beforeBlocks = [...Tlsf.attach(before, 0, before.byteLength).blocks()];
    assert.notDeepEqual(beforeBlocks, realBlocks);

    for (let done = 0; done <= steps.length; done++) {
      for (const wipe of [false, true]) {
        new Uint8Array(buffer).set(new Uint8Array(before));
        for (const [index, value] of steps.slice(0, done)) words[index] = value;
        if (wipe) words.fill(0, W_FREE_GRANULES, controlWords(heap));
        const where = `${c.name}, ${done} of ${steps.length} stores, control block ${
          wipe ? "wiped" : "stale"
        }`;
        const problems = heap.rebuild();
        if (!wipe && (done === 0 || done === steps.length)) assert.deepEqual(problems, [], where);
        assert.deepEqual(heap.verify(), [], where);
        // Before the commit store nothing happened; after it, the operation did.
        assert.deepEqual([...heap.blocks()], done <= commit ? beforeBlocks : realBlocks, where);
        at.forEach((a, i) => {
          if (i === target || isFree(i)) return;
          assert.ok(intact(buffer, a, heap.usableSize(a), i + 1), `${where}: block ${i} intact`);
        });
        exercise(heap, done);
      }
    }
  });
}

test("Tlsf.rebuild turns the rest of the region into one free block after a corrupt header", () => {
  const { buffer, heap } = emptyHeap();
  const [a, b, c] = [heap.alloc(64), heap.alloc(64), heap.alloc(64)];
  fill(buffer, a, 64, 1);
  const words = wordsOf(buffer, heap);
  words[sizeWord(heap, b)] = 0;
  assert.match(heap.verify()[0]!, /^Block at offset \d+ has a size of 0 granules/);
  const problems = heap.rebuild();
  assert.ok(
    problems.some((p) =>
      p ===
        `The ${heap.offset + heap.length - 4 - (b - 4)} bytes from offset ${
          b - 4
        } became one free block (their contents are lost)`
    ),
    problems.join("\n"),
  );
  assert.deepEqual(heap.verify(), []);
  expectBlocks(heap, [[a, 64, false], [b, heap.maxSize - 68, true]]);
  assert.ok(intact(buffer, a, 64, 1));
  // c's stale header now lies inside a free block: the cheap checks of free() cannot tell it
  // from a live block, so the layer above must forget blocks that rebuild() reports lost.
  void c;
  // A size that overshoots the region by less than a smallest block (1 to 3 granules): the
  // block before the rest, used or free, absorbs it.
  for (const short of [1, 2, 3]) {
    for (const free of [false, true]) {
      heap.reset();
      const x = heap.alloc(64);
      const y = heap.alloc(heap.maxSize - 68 - 12); // the 3-granule remainder stays in y
      assert.equal(heap.stats().freeBlocks, 0);
      assert.equal(heap.usableSize(y), heap.maxSize - 68);
      if (free) heap.free(y);
      words[sizeWord(heap, y)] = words[sizeWord(heap, y)]! - 4 * short;
      const where = `${short} granules short, y ${free ? "free" : "used"}`;
      const fixed = heap.rebuild();
      assert.ok(
        fixed.includes(
          `The last ${4 * short} bytes at offset ${
            heap.offset + heap.length - 4 - 4 * short
          } were joined to the block before them`,
        ),
        `${where}: ${fixed.join("\n")}`,
      );
      assert.deepEqual(heap.verify(), [], where);
      expectBlocks(heap, [[x, 64, false], [y, heap.maxSize - 68, free]]);
      assert.equal(heap.stats().free, free ? heap.maxSize - 68 : 0, where);
    }
  }
});

test("Tlsf.verify names the bounds a block size must keep when the walk stops at a header", () => {
  const { buffer, heap } = emptyHeap();
  heap.alloc(64);
  const b = heap.alloc(64);
  const words = wordsOf(buffer, heap);
  const room = (heap.offset + heap.length - b) / 4; // granules from b's header to the sentinel
  for (const size of [0, 3, room + 1]) {
    words[sizeWord(heap, b)] = size * 4;
    assert.equal(
      heap.verify()[0],
      `Block at offset ${b} has a size of ${size} granules, outside ${MIN_BLOCK}..${room} (the walk stops there)`,
    );
  }
});

test("Tlsf.verify and Tlsf.rebuild survive random byte flips", () => {
  for (let trial = 0; trial < 1000; trial++) {
    const { buffer, heap } = busyHeap(1000 + trial, 1 << 14, 500);
    const random = mulberry32(trial);
    const bytes = new Uint8Array(buffer);
    const flips = 1 + Math.floor(random() * 16);
    for (let i = 0; i < flips; i++) {
      // half of the flips in the control block, where they hurt most
      const at = random() < 0.5
        ? Math.floor(random() * controlWords(heap) * 4)
        : Math.floor(random() * bytes.length);
      bytes[at] = bytes[at]! ^ (1 << Math.floor(random() * 8));
    }
    const problems = heap.verify();
    assert.ok(Array.isArray(problems) && problems.length <= 201);
    for (const _ of heap.blocks()) { /* terminates */ }
    heap.stats();
    heap.rebuild();
    assert.deepEqual(heap.verify(), [], `trial ${trial}`);
    exercise(heap, trial);
    Tlsf.attach(buffer, 0, 1 << 14);
  }
});

test("Tlsf.rebuild leaves a consistent heap unchanged", () => {
  const { buffer, heap } = busyHeap(7);
  const before = bytesOf(buffer);
  assert.deepEqual(heap.rebuild(), []);
  assert.deepEqual(new Uint8Array(buffer), before);
});

// ---------------------------------------------------------------------------------------------
// Large regions

test("Tlsf formats and uses a region of TLSF_MAX_LENGTH bytes at the end of a 4 GiB buffer", () => {
  const length = 2 ** 32;
  const buffer = new ArrayBuffer(length);
  assert.equal(TLSF_MAX_LENGTH, length - 4, "2^30 - 1 granules: the size word's 30 bits");
  assert.throws(() => Tlsf.format(buffer, 0, length), {
    name: "RangeError",
    message:
      `Cannot format a heap of ${length} bytes: the largest heap is ${TLSF_MAX_LENGTH} bytes`,
  });
  const heap = Tlsf.format(buffer, 4, TLSF_MAX_LENGTH);
  assert.equal(heap.length, TLSF_MAX_LENGTH);
  assert.equal(controlWords(heap), 10 + 33 * 26, "26 first levels");
  assert.equal(heap.stats().overhead, 3472 + 2 * TLSF_HEADER_SIZE);
  assert.equal(heap.maxSize, TLSF_MAX_LENGTH - heap.stats().overhead);
  const small = heap.alloc(100);
  const huge = heap.alloc(heap.maxSize - 200);
  assert.notEqual(huge, NO_ROOM);
  assert.ok(heap.usableSize(huge) >= heap.maxSize - 200);
  assert.equal(heap.alloc(200), NO_ROOM);
  new Uint8Array(buffer, huge + heap.usableSize(huge) - 8, 8).fill(0xff);
  assert.deepEqual(heap.verify(), []);
  heap.free(small);
  heap.free(huge);
  assert.equal(heap.stats().freeBlocks, 1);
  assert.equal(heap.alloc(heap.maxSize), small);
  assert.equal(small + heap.maxSize, length - 4, "the payload runs up to the sentinel");
  new Uint8Array(buffer, length - 12, 8).fill(0xff);
  assert.deepEqual(heap.rebuild(), []);
  assert.deepEqual(Tlsf.attach(buffer, 4, TLSF_MAX_LENGTH).verify(), []);
});

let maxBuffer: ArrayBuffer | undefined;
try {
  maxBuffer = new ArrayBuffer(TLSF_MAX_LENGTH);
} catch {
  maxBuffer = undefined;
}
test(
  "Tlsf.alloc finds half of a TLSF_MAX_LENGTH heap by the fallback scan of its own class (if the runtime can allocate one)",
  () => {
    const buffer = maxBuffer!;
    maxBuffer = undefined;
    const heap = Tlsf.format(buffer, 0, TLSF_MAX_LENGTH);
    assert.equal(heap.maxSize, TLSF_MAX_LENGTH - heap.stats().overhead);
    const a = heap.alloc(2 ** 31);
    const b = heap.alloc(2 ** 31 - 2 ** 20); // only the fallback scan of its own class finds it
    const c = heap.alloc(8);
    assert.ok(a !== NO_ROOM && b !== NO_ROOM && c !== NO_ROOM);
    assert.ok(c > 2 ** 32 - 2 ** 20);
    new Uint8Array(buffer, c, 8).fill(1);
    heap.free(b);
    assert.deepEqual(heap.verify(), []);
    heap.free(a);
    heap.free(c);
    assert.equal(heap.stats().freeBlocks, 1);
    assert.deepEqual(heap.rebuild(), []);
  },
  { ignore: maxBuffer === undefined },
);
