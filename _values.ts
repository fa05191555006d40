/**
 * Values out of segment memory: how a read copies a value's bytes into private memory before
 * anything decodes them (a writer in another process may change the segment's bytes at any
 * time; the read's seqlock check discards a torn copy afterwards), and the decoded forms a read
 * hands back.
 *
 * @module
 */
import {
  decodeNumber,
  KIND_BYTES,
  KIND_JSON,
  KIND_NAMES,
  KIND_NUMBER,
  KIND_STRING,
} from "./allocator/codec.ts";
import { runtime } from "./ffi/runtime.ts";
import type { EntryInfo } from "./allocator/store.ts";
import type { MemallocEntryInfo } from "./memalloc.ts";

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of private memory (never the segment's: see {@linkcode readText}) as text. */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/**
 * Private bytes that strings are copied into before decoding. Never decode segment memory in
 * place: a writer in another process may change the bytes during the decode (the seqlock only
 * discards the result afterwards), and TextDecoder's fast paths, which check the bytes once and
 * then convert them, crash the process (SIGSEGV, seen on Bun and Deno) when the bytes change
 * from ASCII to multi-byte UTF-8 between the two passes.
 */
const STRING_SCRATCH_MAX = 64 * 1024;
const stringScratch = new Uint8Array(STRING_SCRATCH_MAX);
/** Views of the scratch's first n bytes, made once per length up to 1 KiB (saves ~15 ns). */
const scratchViews: Uint8Array[] = [];

/**
 * Whether byte values are copied into a pooled slab rather than each into an `ArrayBuffer` of
 * its own. V8 (Deno, Node) allocates every new `ArrayBuffer` off the heap and tracks it for the
 * garbage collector: a 100-byte `slice()` costs about 850 ns in a read loop, a view carved out
 * of a slab about 85 ns (Node: a whole 100-byte read, about 970 ns with `slice()` and 160 ns
 * carved). JavaScriptCore (Bun) slices in about 40 ns, faster than the carving
 * (105 ns), so Bun keeps `slice()`.
 */
const POOLED_BYTES = runtime === "deno" || runtime === "node";
/** Size of one slab of the byte pool, and the largest value carved from it. */
const POOL_BYTES = 64 * 1024, POOL_MAX = 4 * 1024;
let pool = new ArrayBuffer(POOL_BYTES);
let poolUsed = 0;

/** A copy of `bytes[start, end)`: a view into the current slab, or a buffer of its own. */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  if (!POOLED_BYTES || length > POOL_MAX) return bytes.slice(start, end);
  if (poolUsed + length > POOL_BYTES) {
    pool = new ArrayBuffer(POOL_BYTES);
    poolUsed = 0;
  }
  const out = new Uint8Array(pool, poolUsed, length);
  poolUsed = (poolUsed + length + 7) & ~7; // 8-byte aligned, like the values in the segment
  out.set(bytes.subarray(start, end));
  return out;
}

/** The UTF-8 text at `bytes[start, end)`, copied out of segment memory first. */
export function readText(bytes: Uint8Array, start: number, end: number): string {
  const length = end - start;
  // Longer texts are copied into a buffer of their own, so the scratch stays small.
  if (length > STRING_SCRATCH_MAX) return utf8.decode(bytes.slice(start, end));
  stringScratch.set(bytes.subarray(start, end));
  return utf8.decode(
    length <= 1024
      ? scratchViews[length] ??= stringScratch.subarray(0, length)
      : stringScratch.subarray(0, length),
  );
}

/** The kind the reader of `readJson` last saw (it runs inside the read, which then returns). */
let jsonReadKind = 0;

/** The kind of the value {@linkcode readJsonText} last read. */
export function lastJsonReadKind(): number {
  return jsonReadKind;
}

/** The reader of `readJson`: the text of a JSON or string value, the number, or the CBOR. */
export function readJsonText(
  kind: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): string | number | Cbor | null {
  jsonReadKind = kind;
  if (kind === KIND_JSON || kind === KIND_STRING) return readText(bytes, start, end);
  if (kind === KIND_NUMBER) return decodeNumber(bytes, start, end);
  if (kind === KIND_BYTES) return null;
  return new Cbor(kind, copyEncoded(bytes, start, end));
}

/**
 * Private bytes that CBOR and records values are copied into before they are decoded (never in
 * place, as for strings), and views of it by length, each with the `DataView` cbor-x caches on
 * it: a buffer of its own per read (`slice()`) costs V8 1.2 to 2.9 µs for a 1 KiB object,
 * measured, about what its decode costs. The decoders copy every byte string out
 * (`copyBuffers`), so no decoded value keeps the scratch.
 */
const encodedScratch = new Uint8Array(STRING_SCRATCH_MAX);
const encodedViews: Uint8Array[] = [];
const ENCODED_VIEWS_MAX = 16 * 1024;

/** `bytes[start, end)` in the scratch, valid until the next read (see {@linkcode Cbor}). */
function copyEncoded(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  if (length > STRING_SCRATCH_MAX) return bytes.slice(start, end);
  encodedScratch.set(bytes.subarray(start, end));
  return length <= ENCODED_VIEWS_MAX
    ? encodedViews[length] ??= encodedScratch.subarray(0, length)
    : encodedScratch.subarray(0, length);
}

/** Reads a value out of segment memory into private memory. */
export function readValue(
  kind: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): string | number | Uint8Array | Cbor {
  if (kind === KIND_STRING) return readText(bytes, start, end);
  if (kind === KIND_BYTES) return copyBytes(bytes, start, end);
  if (kind === KIND_NUMBER) return decodeNumber(bytes, start, end);
  return new Cbor(kind, copyEncoded(bytes, start, end));
}

/**
 * CBOR bytes copied out of the segment, decoded only once the read is known to be whole. The
 * bytes are a view of a scratch buffer that the next read of an encoded value writes again:
 * decode them before any other read.
 */
export class Cbor {
  readonly kind: number;
  readonly bytes: Uint8Array;
  constructor(kind: number, bytes: Uint8Array) {
    this.kind = kind;
    this.bytes = bytes;
  }
}

/** An entry's metadata as `Memalloc.info` (and `RedisStore.info`) give it. */
export function toEntryInfo(info: EntryInfo): MemallocEntryInfo {
  return {
    kind: KIND_NAMES[info.kind] ?? "cbor",
    size: info.size,
    created: info.created,
    written: info.written,
    version: info.version,
    expires: info.expires > 0 ? info.expires : null,
  };
}
