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

// ---------------------------------------------------------------------------------------------
// Store header, after the segment header. All offsets below are in bytes from the segment
// start; u32 fields hold byte offsets (0 = none), which the 4 GiB segment limit keeps in range.

/** "STOR" in memory: written last when the store area is formatted. */
export const STORE_MAGIC = 0x524f_5453;
export const ST_MAGIC = 64; // u32
/** Seqlock: odd while a mutation is in progress. A writer killed mid-way leaves it odd. */
export const ST_SEQ = 68; // u32
/** The mutation in progress, for crash repair: op, new entry, old entry, phase. */
export const ST_JOURNAL_OP = 72; // u32: one of JOURNAL_*
export const ST_JOURNAL_NEW = 76; // u32: entry being written
export const ST_JOURNAL_OLD = 80; // u32: entry it replaces
export const ST_JOURNAL_PHASE = 84; // u32: 1 once the new entry is linked (committed)
export const ST_AUTOCLEAN = 88; // f64: eviction watermark, a fraction of the segment size
export const ST_BUCKETS = 96; // u32: payload offset of the directory's bucket array
export const ST_BUCKET_COUNT = 100; // u32: buckets (a power of two)
export const ST_ENTRIES = 104; // u32: live entries
export const ST_ORDER_HEAD = 108; // u32: oldest-written entry
export const ST_ORDER_TAIL = 112; // u32: newest-written entry
export const ST_REPAIRS = 116; // u32: crash repairs done on this segment
export const ST_WRITES = 128; // u64 counters, updated with Atomics by every process
export const ST_HITS = 136; // u64
export const ST_MISSES = 144; // u64
export const ST_EVICTIONS = 152; // u64
export const ST_DELETES = 160; // u64
/** Where the heap (TLSF region) starts: end of the headers. */
export const HEAP_OFFSET = 256;

/** Journal operations. */
export const JOURNAL_NONE = 0, JOURNAL_WRITE = 1, JOURNAL_PURGE = 2;

// ---------------------------------------------------------------------------------------------
// Entry: the payload of one heap block.
//
//   +0  u32  tag: ENTRY_TAG | kind << 8 | nameLength << 16   (zeroed before the block is freed)
//   +4  u32  next entry in the same directory bucket
//   +8  u32  previous entry in write order (older)
//   +12 u32  next entry in write order (newer)
//   +16 u32  hash of the name
//   +20 u32  value length in bytes
//   +24 f64  creation time (ms since the epoch), kept across overwrites
//   +32 f64  last write time
//   +40      name (UTF-8), then the value bytes

/** Low byte of an entry's tag word. */
export const ENTRY_TAG = 0xe7;
export const E_TAG = 0, E_HASH_NEXT = 4, E_ORDER_PREV = 8, E_ORDER_NEXT = 12;
export const E_HASH = 16, E_VALUE_LENGTH = 20, E_CREATED = 24, E_WRITTEN = 32;
/** Bytes before the name. */
export const ENTRY_HEADER_BYTES = 40;
/** Longest name in UTF-8 bytes. */
export const MAX_NAME_BYTES = 250;
