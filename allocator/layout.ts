/**
 * The segment's on-disk format, in one place: every field's offset and width. Little-endian,
 * fixed width, the same from Deno and from Bun. Offsets are in bytes from the segment start.
 *
 * ```
 * 0    segment header (64 bytes), written once when the segment is created
 * 64   store header: seqlock, journal, counters, directory and write-order roots
 * ...  heap (TLSF region) holding the directory's bucket array and the entries
 * ```
 *
 * @module
 */

/** "MALC" in memory: the first four bytes of every memalloc segment. */
export const MAGIC = 0x434c_414d;
/** The layout this code reads and writes. A segment with a newer one is refused. */
export const LAYOUT_VERSION = 1;

/** Segment header: byte offsets. */
export const SEG_MAGIC = 0; // u32, written last at creation
export const SEG_VERSION = 4; // u32
export const SEG_SIZE = 8; // f64, the segment's size in bytes
export const SEG_CREATED = 16; // f64, creation time (ms since the epoch)
export const SEG_CREATOR_PID = 24; // u32, the process that created it (informational)
/** Bytes of the segment header; the store header follows. */
export const SEGMENT_HEADER_BYTES = 64;

/** Smallest segment memalloc creates: room for the headers and a useful heap. */
export const MIN_SEGMENT_SIZE = 64 * 1024;
/** Largest segment: offsets are kept in 32-bit fields of 8-byte units. */
export const MAX_SEGMENT_SIZE = 2 ** 32;

/** Whether this machine stores numbers little-endian (every platform memalloc supports). */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
