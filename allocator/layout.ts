/**
 * The segment's on-disk format, in one place: every field's offset and width. Little-endian,
 * fixed width, the same from Deno and from Bun. Offsets are in bytes from the segment start.
 *
 * ```
 * 0    segment header (128 bytes): written once when the segment is created, but for the lock
 *      (its holder's pid, and the robust mutex at 64, which libc's pthread functions change)
 * 128  store header: writer mark, journal, counters, directory and write-order roots
 * 256  the read seqlock: its epoch, then 64 stripes a cache line apart
 * 4416 heap
 * ...  heap (TLSF region) holding the directory's bucket array and the entries
 * ```
 *
 * @module
 */

/** "MALC" in memory: the first four bytes of every memalloc segment. */
export const MAGIC = 0x434c_414d;
/**
 * The layout this code reads and writes. A segment with another one is refused.
 * - 1: the first; the lock was always `flock`.
 * - 2: a 128-byte segment header holding the lock kind, the holder's pid and a robust mutex;
 *   the read seqlock split into an epoch and 64 stripes; the heap from 4416.
 * - 3: 4-byte block headers (the heap's version 2); 36-byte entries with a version, 48-bit
 *   times and no stored hash or value length; the store's write counter.
 * - 4: expiry: an entry's flag and 12-byte trailer, the store's expiry order (a binary heap)
 *   and its `expired` counter.
 * - 5: values of kind 5, JSON text (allocator/codec.ts `KIND_JSON`); nothing else changed, so a
 *   store of version 4 is still opened, and gets no JSON values (its other processes could not
 *   read them).
 * - 6: values of kind 6, CBOR records over the store's table of record structures
 *   (allocator/records.ts), whose heap block {@linkcode ST_RECORDS} points to; nothing else
 *   changed, so stores of versions 4 and 5 are still opened, and get no record values.
 */
export const LAYOUT_VERSION = 6;

/** The oldest layout this code opens: 4, the same as 6 but for the JSON and records kinds. */
export const OLDEST_LAYOUT_VERSION = 4;

/** The first layout whose values may be JSON text. */
export const JSON_LAYOUT_VERSION = 5;

/** The first layout whose values may be CBOR records (kind 6). */
export const RECORDS_LAYOUT_VERSION = 6;

/** Segment header: byte offsets. */
export const SEG_MAGIC = 0; // u32, written last at creation
export const SEG_VERSION = 4; // u32
export const SEG_SIZE = 8; // f64, the segment's size in bytes
export const SEG_CREATED = 16; // f64, creation time (ms since the epoch)
export const SEG_CREATOR_PID = 24; // u32, the process that created it (informational)
/** The store's lock kind: {@linkcode LOCK_KIND_MUTEX} or {@linkcode LOCK_KIND_FLOCK}. */
export const SEG_LOCK_KIND = 28; // u32
/** The pid of the process holding the lock, written after it takes it; 0 when free. */
export const SEG_LOCK_HOLDER = 32; // u32
/** How often the mutex was found damaged and initialised again. */
export const SEG_LOCK_GENERATION = 36; // u32
/**
 * A copy of the mutex's type word as `pthread_mutex_init` left it: a mutex whose word differs
 * is damaged, and is initialised again before any pthread call sees it.
 */
export const SEG_MUTEX_KIND = 40; // u32
/** glibc's `pthread_mutex_t` (40 bytes), process-shared and robust; 8-byte aligned. */
export const SEG_MUTEX = 64;
/** Bytes of the segment header; the store header follows. */
export const SEGMENT_HEADER_BYTES = 128;

/** Lock kind: the robust process-shared mutex at {@linkcode SEG_MUTEX} (glibc's layout). */
export const LOCK_KIND_MUTEX = 1;
/** Lock kind: `flock` on the shared-memory object (any C library). */
export const LOCK_KIND_FLOCK = 2;

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
export const ST_MAGIC = 128; // u32
/**
 * The writer's mark: odd while a mutation is in progress, so a writer killed mid-way leaves it
 * odd and the next holder of the lock repairs. Readers do not look at it: they check the epoch
 * and their name's stripe (below).
 */
export const ST_SEQ = 132; // u32
/** The mutation in progress, for crash repair: op, new entry, old entry, phase. */
export const ST_JOURNAL_OP = 136; // u32: one of JOURNAL_*
export const ST_JOURNAL_NEW = 140; // u32: entry being written
export const ST_JOURNAL_OLD = 144; // u32: entry it replaces
export const ST_JOURNAL_PHASE = 148; // u32: 1 once the new entry is linked (committed)
export const ST_AUTOCLEAN = 152; // f64: eviction watermark, a fraction of the segment size
export const ST_ENTRIES = 168; // u32: live entries
export const ST_ORDER_HEAD = 172; // u32: oldest-written entry
export const ST_ORDER_TAIL = 176; // u32: newest-written entry
export const ST_REPAIRS = 180; // u32: crash repairs done on this segment
/** The write counter: the last version given to an entry (u32 low, u32 high). */
export const ST_VERSION = 184;
export const ST_WRITES = 192; // u64 counters, updated with Atomics by every process
export const ST_HITS = 200; // u64
export const ST_MISSES = 208; // u64
export const ST_EVICTIONS = 216; // u64
export const ST_DELETES = 224; // u64
export const ST_EXPIRED = 232; // u64: entries removed because they expired
/**
 * The expiry order: a binary min-heap, by expiry time, of the entries that have one. An array
 * of u32 entry offsets in a heap block of its own (0: none yet); each entry records its index in
 * the array in its trailer. Derived data: repair rebuilds it from the entries.
 */
export const ST_EXPIRY_HEAP = 240; // u32: payload offset of the array, 0 when there is none
export const ST_EXPIRY_COUNT = 244; // u32: entries in it
/**
 * The table of record structures (allocator/records.ts): payload offset of its heap block, 0
 * while the store has none. Written under the lock, once the block is whole; the block is
 * replaced, never changed in place. Layout of the block:
 *
 *   +0  u32  {@linkcode RECORDS_MAGIC}
 *   +4  u32  lineage: a random non-zero number chosen when the table is first made, kept while
 *            the table grows; every record value starts with it, then with the version below
 *   +8  u32  version: 1 when the table is made, one more at every save (a save may append
 *            structures or extend one with more keys, which values written before still read)
 *   +12 u32  length of the CBOR that follows
 *   +16      the structures, an array of arrays of keys, as plain CBOR
 */
export const ST_RECORDS = 248;
/** "RECS" in memory: the first word of the table's block (its low byte is never ENTRY_TAG). */
export const RECORDS_MAGIC = 0x5343_4552;
/** Bytes of the table block's header, before its CBOR. */
export const RECORDS_HEADER_BYTES = 16;
/**
 * The read seqlock's epoch: odd while a mutation that moves every entry runs (purge, directory
 * growth, repair, a format after damage), so that every read retries. On a cache line of its own,
 * since every read loads it and almost no write changes it.
 */
export const ST_EPOCH = 256; // u32
/**
 * The directory's roots, on the epoch's cache line: every read loads them, and only what moves
 * everything (under the epoch) changes them. (On the line of the writer's mark, which every
 * write changes, they cost each read on another core a cache miss.)
 */
export const ST_BUCKETS = 260; // u32: payload offset of the directory's bucket array
export const ST_BUCKET_COUNT = 264; // u32: buckets (a power of two)
/**
 * The read seqlock's stripes: {@linkcode STRIPES} u32 words, one per 64-byte cache line. A name's
 * stripe is its hash's low bits. A mutation makes the stripe of every directory chain it changes
 * odd before it changes it, and even again when it is done; a read retries when its stripe (or
 * the epoch) was odd or moved. The directory has at least {@linkcode STRIPES} buckets, so one
 * chain holds names of one stripe only, and a write elsewhere leaves a reader alone.
 */
export const ST_STRIPES = 320;
/** Number of stripes (a power of two). */
export const STRIPES = 64;
/**
 * The least number of directory buckets: a bucket's index is the hash's low bits, so every
 * bucket then holds names of one stripe only. (Taking the stripe from bits 4 to 9 instead, so
 * that each 64-byte line of bucket slots belongs to one stripe, needs 1,024 buckets and measured
 * no faster: what a reader of another stripe still pays is the stripe word's own cache line.)
 */
export const MIN_BUCKETS: number = STRIPES;

/**
 * The stripe (0 to {@linkcode STRIPES} - 1) of a name's hash: its low bits.
 *
 * @param hash The name's FNV-1a hash.
 * @returns Its stripe.
 */
export function stripeOf(hash: number): number {
  return hash & (STRIPES - 1);
}
/** Bytes from one stripe word to the next: a cache line. */
export const STRIPE_STRIDE = 64;
/** Where the heap (TLSF region) starts: end of the headers. */
export const HEAP_OFFSET: number = ST_STRIPES + STRIPES * STRIPE_STRIDE;

/** Journal operations. */
export const JOURNAL_NONE = 0, JOURNAL_WRITE = 1, JOURNAL_PURGE = 2;

// ---------------------------------------------------------------------------------------------
// Entry: the payload of one heap block (4-aligned; the block's 4-byte size word is just before
// it). Every field is a u32; times and versions wider than 32 bits are split.
//
//   +0  u32  tag: ENTRY_TAG | kind << 8 | slack << 12 | flags << 16 | nameLength << 24
//            (zeroed before the block is freed)
//   +4  u32  next entry in the same directory bucket
//   +8  u32  previous entry in write order (older)
//   +12 u32  next entry in write order (newer)
//   +16 u32  version, low 32 bits       the store's write counter when this value was written:
//   +20 u32  version, high 21 bits      unique in the store, growing with every write;
//            bits 21 to 31: the name's check, its hash's top 11 bits (see NAME_CHECK_SHIFT)
//   +24 u32  creation time, low 32 bits (ms since the Unix epoch; kept across overwrites)
//   +28 u32  last write time, low 32 bits
//   +32 u32  creation time's high 16 bits | last write time's high 16 bits << 16
//   +36      name (UTF-8), then the value bytes, then `slack` unused bytes to the block's end
//
// The value's length is not stored: it is the block's usable size (from its size word) less the
// header, the name and the slack (0 to 15 bytes: the granule rounding and a remainder too small
// to split off). Times have 48 bits (ms until the year 10889). The hash is not kept whole: the
// directory compares the name's length and bytes, a writer that needs a name's hash computes
// it, and its top 11 bits let repair and verify tell a damaged name (it would pass for another
// name) from a sound one, all but one time in 2,048.
//
// The flags announce what an entry carries beyond this header. FLAG_EXPIRES: a 12-byte trailer
// at the very end of the block (4-aligned, after the slack):
//   -12 u32  expiry time, low 32 bits (ms since the Unix epoch; gone once now >= it)
//   -8  u32  expiry time, high 16 bits
//   -4  u32  the entry's index in the expiry order (EXPIRY_UNTRACKED when it is in none)
// A value with a trailer ends 12 bytes before the slack.

/** Low byte of an entry's tag word. */
export const ENTRY_TAG = 0xe7;
export const E_TAG = 0, E_HASH_NEXT = 4, E_ORDER_PREV = 8, E_ORDER_NEXT = 12;
export const E_VERSION_LOW = 16, E_VERSION_HIGH = 20;
export const E_CREATED_LOW = 24, E_WRITTEN_LOW = 28, E_TIMES_HIGH = 32;
/** Where the name's check sits in the version's high word: `hash >>> 21 << 21`. */
export const NAME_CHECK_SHIFT = 21;
/** Bytes of an entry's fixed header. */
export const ENTRY_HEADER_BYTES = 36;
/** The tag word's fields: `(tag >>> shift) & mask`. */
export const TAG_KIND_SHIFT = 8, TAG_KIND_MASK = 0xf;
export const TAG_SLACK_SHIFT = 12, TAG_SLACK_MASK = 0xf;
export const TAG_FLAGS_SHIFT = 16, TAG_FLAGS_MASK = 0xff;
export const TAG_NAME_SHIFT = 24;
/** The entry flag for an expiry time (the tag's bit `TAG_FLAGS_SHIFT`). */
export const FLAG_EXPIRES = 1;
/** The flags this layout defines. */
export const KNOWN_FLAGS: number = FLAG_EXPIRES;
/** Bytes of the expiry trailer. */
export const EXPIRY_TRAILER_BYTES = 12;
/** The trailer's index of an entry the expiry order could not take (no room for it). */
export const EXPIRY_UNTRACKED = 0xffff_ffff;
/** Most unused bytes at an entry's end that its tag can record. */
export const MAX_SLACK: number = TAG_SLACK_MASK;
/** The largest version an entry records: 2^53 - 1, every one a safe integer. */
export const MAX_VERSION: number = Number.MAX_SAFE_INTEGER;

/** Longest name in UTF-8 bytes. */
export const MAX_NAME_BYTES = 250;
