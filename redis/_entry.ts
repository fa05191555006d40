/**
 * An entry as {@linkcode RedisStore} keeps it on the server: the fields of its header (see
 * redis/_scripts.ts), read back as `Memalloc.info` gives them, and numbers as the codec stores
 * them, for the scripts that do arithmetic.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { EntryInfo } from "../allocator/store.ts";

/** An entry's header fields (see redis/_scripts.ts): what `Store.info` gives for an entry. */
export type Header = EntryInfo;

/** An entry as stored: its header's fields and its value's bytes. */
export interface StoredEntry extends Header {
  data: Buffer;
}

/** The fields of a header: `<BBI4dddd`, little-endian. */
export function parseHeader(stored: Buffer): Header {
  return {
    kind: stored[1]!,
    size: stored.readUInt32LE(2),
    created: stored.readDoubleLE(6),
    written: stored.readDoubleLE(14),
    version: stored.readDoubleLE(22),
    expires: stored.readDoubleLE(30),
  };
}

/** The float64 of a number, little-endian, as the codec stores numbers. */
export function float64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value, 0);
  return bytes;
}
