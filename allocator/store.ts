/**
 * The store: named entries in a segment, their timestamps, write order, eviction, counters and
 * crash repair. Pure TypeScript over an `ArrayBuffer`; the lock is handed in.
 *
 * ## Concurrency
 * - Mutations hold the exclusive lock. They make the writer's mark (`ST_SEQ`) odd before
 *   touching anything and even after, and, for the readers, the read seqlock's stripe of every
 *   directory chain they change (`ST_STRIPES`; the epoch `ST_EPOCH` for a mutation that moves
 *   everything), odd before and even after.
 * - Reads take no lock: they read the epoch and their name's stripe, find the entry, copy (or
 *   decode) the value, and read both again; if one moved or was odd, they retry, and after a few
 *   tries take the lock. A value read is therefore always one some writer wrote whole, and a
 *   write to a name of another stripe does not make a read retry.
 * - A writer killed mid-mutation leaves its mark odd. The next process to take the lock sees
 *   that and repairs the segment before anything else (see {@linkcode Store.repair}).
 *
 * @module
 */
import { Directory, hashBytes } from "./directory.ts";
import { mapHeap, type StoreMap } from "./map.ts";
import { expiryAt, expiryOf, ExpiryOrder, hasExpiry, trailerWord, writeTrailer } from "./expiry.ts";
import {
  E_CREATED_LOW,
  E_HASH_NEXT,
  E_ORDER_NEXT,
  E_ORDER_PREV,
  E_TIMES_HIGH,
  E_VERSION_HIGH,
  E_VERSION_LOW,
  E_WRITTEN_LOW,
  ENTRY_HEADER_BYTES,
  ENTRY_TAG,
  EXPIRY_TRAILER_BYTES,
  EXPIRY_UNTRACKED,
  FLAG_EXPIRES,
  HEAP_OFFSET,
  JOURNAL_NONE,
  JOURNAL_PURGE,
  JOURNAL_WRITE,
  KNOWN_FLAGS,
  MAX_NAME_BYTES,
  MAX_SLACK,
  MIN_BUCKETS,
  NAME_CHECK_SHIFT,
  RECORDS_HEADER_BYTES,
  RECORDS_MAGIC,
  ST_AUTOCLEAN,
  ST_BUCKET_COUNT,
  ST_BUCKETS,
  ST_DELETES,
  ST_ENTRIES,
  ST_EPOCH,
  ST_EVICTIONS,
  ST_EXPIRED,
  ST_EXPIRY_HEAP,
  ST_HITS,
  ST_JOURNAL_NEW,
  ST_JOURNAL_OLD,
  ST_JOURNAL_OP,
  ST_JOURNAL_PHASE,
  ST_MAGIC,
  ST_MISSES,
  ST_ORDER_HEAD,
  ST_ORDER_TAIL,
  ST_RECORDS,
  ST_REPAIRS,
  ST_SEQ,
  ST_STRIPES,
  ST_VERSION,
  ST_WRITES,
  STORE_MAGIC,
  STRIPE_STRIDE,
  stripeOf,
  STRIPES,
  TAG_FLAGS_MASK,
  TAG_FLAGS_SHIFT,
  TAG_KIND_MASK,
  TAG_KIND_SHIFT,
  TAG_NAME_SHIFT,
  TAG_SLACK_MASK,
  TAG_SLACK_SHIFT,
} from "./layout.ts";
import { NO_ROOM, Tlsf } from "./tlsf.ts";
import { MemallocError } from "../errors.ts";

/** The private word behind the fences of plain seqlock loads (see `plainSeqLoads`). */
const FENCE = new Int32Array(1);

/** The lock a store runs under: the segment's mutex or `flock`, or anything with that meaning. */
export interface StoreLock {
  /**
   * Takes the lock: exclusive for mutations, shared (where the lock has a shared mode) for
   * reads that change nothing. Returns `true` when the previous holder died holding it.
   */
  lock(exclusive: boolean): boolean | void;
  /** Releases it. */
  unlock(): void;
}

/** What {@linkcode Store.open} takes. */
export interface StoreOptions {
  /** The segment's lock. */
  lock: StoreLock;
  /** Watermark for a store formatted by this call, in (0, 1]. */
  autoclean: number;
  /** Clock, in ms since the epoch (default `Date.now`; tests pass their own). */
  now?: () => number;
  /** The store's name, for error messages. */
  label?: string;
  /**
   * Whether reads load the seqlock with plain loads between fences on a private word, instead
   * of `Atomics.load` on the shared word. Only where plain loads are not reordered with each
   * other (x86) and `Atomics.load` is costly: JavaScriptCore (Bun) compiles it to a locked
   * read-modify-write on x86, so every read takes the seqlock's cache line exclusive and two
   * reading processes bounce it between cores (measured: one Bun process 106 M seqlock loads/s,
   * two at once 32 M/s each). An `Atomics` call on a private word keeps the JIT from moving or
   * merging the plain loads (JSC treats every `Atomics` call as touching all of memory) and
   * touches no shared line. V8 (Deno) compiles `Atomics.load` to a plain load already.
   */
  plainSeqLoads?: boolean;
}

/** Reads an entry's value from segment memory; see {@linkcode Store.read}. */
export type ValueReader<T> = (
  kind: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  entry: number,
) => T;

/** One entry as {@linkcode Store.scan} yields it: private copies of its bytes. */
export interface ScannedEntry {
  /** The name's UTF-8 bytes. */
  name: Uint8Array;
  /** The value's kind, as the codec numbers it. */
  kind: number;
  /** The value's bytes, when the scan asked for values. */
  value: Uint8Array | undefined;
  /** The value's size in bytes. */
  size: number;
  /** Creation time (ms since the epoch). */
  created: number;
  /** Last write time (ms since the epoch). */
  written: number;
  /** The entry's version. */
  version: number;
  /** When it expires (ms since the epoch), 0 when never. */
  expires: number;
}

/** The store's table of record structures, as {@linkcode Store.recordTable} copies it out. */
export interface RecordTable {
  /** The table's lineage: chosen when it was first made, kept while it grows. */
  lineage: number;
  /** Its version: 1 when made, one more at every save. */
  version: number;
  /** Its CBOR: an array of arrays of keys. */
  bytes: Uint8Array;
}

/** Most entries {@linkcode Store.scan} copies under the lock at a time. */
export const SCAN_CHUNK = 256;
/** About the most bytes of names and values {@linkcode Store.scan} copies under the lock at a time. */
export const SCAN_BYTES: number = 1 << 20;

/** What {@linkcode Store.stats} reports. */
export interface StoreStats {
  /** Live entries. */
  entries: number;
  /** Segment bytes in use: headers, directory, entries and heap overhead. */
  bytesUsed: number;
  /** Payload bytes free in the heap. */
  bytesFree: number;
  /** Segment size in bytes. */
  capacity: number;
  /** Largest value-and-name that would fit now without eviction, in payload bytes. */
  largestFree: number;
  /** Usage that eviction brings the store down to, in bytes (`autoclean × capacity`). */
  watermark: number;
  /** The watermark as a fraction of the capacity. */
  autoclean: number;
  /** Writes by all processes since the segment was created. */
  writes: number;
  /** Reads that found their name, all processes. */
  hits: number;
  /** Reads that did not, all processes. */
  misses: number;
  /** Entries evicted to make room or by `clean()`. */
  evictions: number;
  /** Entries removed by `delete()`. */
  deletes: number;
  /** Times a process repaired the segment after another died mid-mutation. */
  repairs: number;
  /** Entries removed because they had expired (by a write that needed room, or `clean()`). */
  expired: number;
}

/** One entry's metadata, as {@linkcode Store.info} returns it. */
export interface EntryInfo {
  /** Value kind, as the codec numbers it. */
  kind: number;
  /** Value size in bytes, as stored. */
  size: number;
  /** Creation time (ms since the epoch); kept when the entry is overwritten. */
  created: number;
  /** Last write time (ms since the epoch). */
  written: number;
  /**
   * The value's version: the store's write counter when it was written. Every write of any
   * name gets a larger one, so a name deleted and written again never has an earlier version.
   */
  version: number;
  /** When the entry expires (ms since the epoch), 0 when it never does. */
  expires: number;
}

/**
 * What a mutation found wrong in the segment: a link out of bounds, a block that is not what the
 * header says. The mutation stops, the segment is repaired, and the mutation runs again.
 */
class Corrupt extends Error {}

/** The error for a store that is still corrupt after a repair. */
function corruptError(store: string, what: string, cause?: unknown): MemallocError {
  return new MemallocError(`Store "${store}" is corrupt: ${what}`, {
    code: "ERR_MEMALLOC_CORRUPT",
    store,
    cause,
  });
}

/** The watermark a repair restores when the stored one is not a fraction in (0, 1]. */
const DEFAULT_WATERMARK = 0.8;
/** The u32 index of a stripe's word in the read seqlock. */
function stripeWord(stripe: number): number {
  return (ST_STRIPES + stripe * STRIPE_STRIDE) >>> 2;
}
/** The u32 index of the read seqlock's epoch. */
const EPOCH = ST_EPOCH >>> 2;

const TWO_32 = 2 ** 32;
/** The version's bits in its high word; the name's check has the rest. */
const VERSION_HIGH_MASK = (1 << NAME_CHECK_SHIFT) - 1;

/** The name's check that an entry's version high word carries (see `NAME_CHECK_SHIFT`). */
function nameCheck(hash: number): number {
  return ((hash >>> NAME_CHECK_SHIFT) << NAME_CHECK_SHIFT) >>> 0;
}

/** A 48-bit time field's value: ms since the epoch, whole, from 0 to 2^48 - 1. */
function clampTime(ms: number): number {
  return ms >= 0 ? Math.min(Math.floor(ms), 2 ** 48 - 1) : 0;
}

/** The expiry time of a value written at `now` to live `ttl` ms; 0 (never) for a ttl of 0. */
function expiryTime(now: number, ttl: number): number {
  return ttl > 0 ? Math.max(1, clampTime(Math.ceil(now + ttl))) : 0;
}

/** The float64 that `increment` reads and writes, and its bytes. */
const NUMBER = new Float64Array(1);
const NUMBER_BYTES = new Uint8Array(NUMBER.buffer);

/** Reads retry this many times before they take the lock. */
const OPTIMISTIC_TRIES = 64;
/** Hits and misses are counted locally and added to the shared counters every this many. */
const COUNTER_FLUSH = 256;

const encoder = new TextEncoder();

/**
 * Throws the `TypeError`/`RangeError` for a bad entry name; returns its UTF-8 length, encoded
 * into `scratch`.
 */
export function encodeName(name: unknown, scratch: Uint8Array): number {
  if (typeof name !== "string") {
    throw new TypeError(`Entry name must be a string, got ${typeName(name)}`);
  }
  if (name.length === 0) throw new TypeError("Entry name must not be empty");
  if (name.length > MAX_NAME_BYTES) throw nameTooLong(name);
  const { read, written } = encoder.encodeInto(name, scratch);
  if (read !== name.length || written > MAX_NAME_BYTES) throw nameTooLong(name);
  if (!name.isWellFormed()) {
    throw new TypeError(`Entry name "${name}" contains a lone surrogate`);
  }
  return written;
}

function nameTooLong(name: string): RangeError {
  return new RangeError(
    `Entry name "${name.slice(0, 32)}..." is ${
      encoder.encode(name).length
    } bytes long, the limit is ${MAX_NAME_BYTES}`,
  );
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value === "string" ? `"${value}"` : typeof value;
}

/**
 * A store over a mapped segment (or any `ArrayBuffer`, for tests). All state is in the buffer;
 * this object caches views and per-process counters only.
 */
export class Store {
  readonly #lock: StoreLock;
  readonly #size: number;
  readonly #u8: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #f64: Float64Array;
  readonly #u64: BigUint64Array;
  readonly #heap: Tlsf;
  readonly #dir: Directory;
  readonly #expiry: ExpiryOrder;
  readonly #heapEnd: number;
  readonly #name = new Uint8Array(MAX_NAME_BYTES * 3 + 8);
  /** The clock a test handed in, or null for `Date.now()` (called directly: an intrinsic). */
  readonly #clock: (() => number) | null;
  /** The store name, for error messages. */
  readonly #label: string;
  /** Most entries the heap can hold: a bound for every walk, whatever the header says. */
  readonly #maxEntries: number;
  readonly #plainSeqLoads: boolean;
  /** The stripes the mutation in progress made odd; see `#touch`. */
  readonly #touched = new Uint8Array(STRIPES);
  /** How many of `#touched` are in use. */
  #touchedCount = 0;
  /** For each stripe, whether `#touched` holds it. */
  readonly #isTouched = new Uint8Array(STRIPES);
  /** Whether the mutation in progress made the epoch odd. */
  #epochTouched = false;
  #nameLength = 0;
  #nameHash = 0;
  /** The entry a write in progress replaces, while it makes room (see `#allocRoom`). */
  #keep = 0;
  /** Whether an `update` callback is running: every call on the store then throws. */
  #busy = false;
  #hits = 0;
  #misses = 0;

  private constructor(
    buffer: ArrayBuffer,
    lock: StoreLock,
    heap: Tlsf,
    now: () => number,
    label: string,
    plainSeqLoads: boolean,
  ) {
    this.#lock = lock;
    this.#plainSeqLoads = plainSeqLoads;
    this.#label = label;
    this.#maxEntries = Math.floor(heap.length / (ENTRY_HEADER_BYTES + 8));
    this.#size = buffer.byteLength - (buffer.byteLength & 7);
    this.#u8 = new Uint8Array(buffer, 0, this.#size);
    this.#u32 = new Uint32Array(buffer, 0, this.#size >>> 2);
    this.#f64 = new Float64Array(buffer, 0, this.#size >>> 3);
    this.#u64 = new BigUint64Array(buffer, 0, this.#size >>> 3);
    this.#heap = heap;
    this.#heapEnd = heap.offset + heap.length;
    this.#dir = new Directory(this.#u8, this.#u32, heap.offset, this.#heapEnd);
    this.#expiry = new ExpiryOrder(this.#u32, heap);
    this.#clock = now === Date.now ? null : now;
  }

  /**
   * Opens the store in `buffer`, formatting it first if nobody has (under the exclusive lock).
   * A store formatted earlier keeps its own settings.
   *
   * @param buffer The segment: headers at 0, heap from `HEAP_OFFSET` to the end.
   * @param options The lock, the watermark for a new store, the clock, the name.
   * @returns The store.
   */
  static open(buffer: ArrayBuffer, options: StoreOptions): Store {
    const { lock, autoclean, now = Date.now, label = "(unnamed)", plainSeqLoads = false } = options;
    const u32 = new Uint32Array(buffer, 0, HEAP_OFFSET >>> 2);
    const length = buffer.byteLength - (buffer.byteLength & 7) - HEAP_OFFSET;
    const ownerDied = lock.lock(true) === true;
    try {
      const magic = u32[ST_MAGIC >>> 2];
      if (magic === STORE_MAGIC) {
        let heap: Tlsf | undefined;
        try {
          heap = Tlsf.attach(buffer, HEAP_OFFSET, length);
        } catch {
          // The heap's control block is gone: nothing in it can be trusted (formatted below).
        }
        if (heap !== undefined) {
          const store = new Store(buffer, lock, heap, now, label, plainSeqLoads);
          if (ownerDied || store.#needsRepair()) store.#repairOrReset();
          return store;
        }
      }
      // Magic zero: nobody has formatted the store yet. A foreign magic, or a heap that cannot
      // be attached: the store was damaged, and starts afresh with its counters kept.
      const heap = Tlsf.format(buffer, HEAP_OFFSET, length);
      const store = new Store(buffer, lock, heap, now, label, plainSeqLoads);
      if (magic === 0) store.#format(autoclean);
      else store.#formatAfterLoss();
      return store;
    } finally {
      lock.unlock();
    }
  }

  #format(autoclean: number): void {
    const u32 = this.#u32;
    // The writer's mark, the epoch and the stripes keep counting: readers may be looking.
    u32.fill(0, (ST_SEQ >>> 2) + 1, ST_EPOCH >>> 2);
    this.#f64[ST_AUTOCLEAN >>> 3] = autoclean;
    this.#newDirectory(this.#initialBuckets());
    Atomics.store(u32, ST_MAGIC >>> 2, STORE_MAGIC);
  }

  /**
   * Formats the store area afresh over an empty heap, after damage nothing could repair: the
   * entries are lost, the counters kept.
   */
  #formatAfterLoss(): void {
    const autoclean = this.autoclean;
    const repairs = this.#u32[ST_REPAIRS >>> 2]!;
    const counters = this.#u64.slice(ST_WRITES >>> 3, (ST_EXPIRED >>> 3) + 1);
    // Versions keep growing: a value written after the loss must not reuse one seen before.
    const version = this.#u32.slice(ST_VERSION >>> 2, (ST_VERSION >>> 2) + 2);
    const u32 = this.#u32;
    Atomics.store(u32, ST_SEQ >>> 2, Atomics.load(u32, ST_SEQ >>> 2) | 1);
    this.#touchAll(); // readers keep off
    this.#format(autoclean > 0 && autoclean <= 1 ? autoclean : DEFAULT_WATERMARK);
    this.#u64.set(counters, ST_WRITES >>> 3);
    u32.set(version, ST_VERSION >>> 2);
    u32[ST_REPAIRS >>> 2] = repairs + 1;
    this.#settleSeqlock();
    Atomics.add(u32, ST_SEQ >>> 2, 1); // even again
  }

  #initialBuckets(): number {
    let count = MIN_BUCKETS; // never fewer: a chain must hold one stripe's names only
    while (count < 4096 && count * 16384 < this.#heap.length) count *= 2;
    return count;
  }

  #newDirectory(count: number): void {
    const buckets = this.#heap.alloc(count * 4);
    if (buckets === NO_ROOM) throw new Error("Heap too small for the directory");
    this.#dir.rebuild(buckets, count, [], this.#hashOf);
    const u32 = this.#u32;
    u32[ST_ENTRIES >>> 2] = 0;
    u32[ST_ORDER_HEAD >>> 2] = 0;
    u32[ST_ORDER_TAIL >>> 2] = 0;
    this.#expiry.clear();
  }

  /** The eviction watermark as a fraction of the segment size. */
  get autoclean(): number {
    return this.#f64[ST_AUTOCLEAN >>> 3]!;
  }

  /** The segment size in bytes. */
  get capacity(): number {
    return this.#size;
  }

  /** The largest name + value (UTF-8 bytes) that fits in an empty store. */
  get maxEntryBytes(): number {
    const bucketBytes = this.#u32[ST_BUCKET_COUNT >>> 2]! * 4;
    return Math.max(0, this.#heap.maxSize - bucketBytes - 64 - ENTRY_HEADER_BYTES);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  /**
   * Encodes `name` into the scratch buffer and hashes it, setting `#nameLength` and
   * `#nameHash`. ASCII names (the common case) take one loop; others go through TextEncoder.
   */
  #key(name: string): void {
    if (this.#busy) throw this.#reentrant();
    if (typeof name === "string") {
      const n = name.length;
      if (n > 0 && n <= MAX_NAME_BYTES) {
        const scratch = this.#name;
        let hash = 0x811c9dc5;
        let i = 0;
        for (; i < n; i++) {
          const c = name.charCodeAt(i);
          if (c >= 0x80) break;
          scratch[i] = c;
          hash = Math.imul(hash ^ c, 0x01000193);
        }
        if (i === n) {
          this.#nameLength = n;
          this.#nameHash = hash >>> 0;
          return;
        }
      }
    }
    const length = encodeName(name, this.#name); // validates; throws for bad names
    this.#nameLength = length;
    this.#nameHash = hashBytes(this.#name, length);
  }

  /**
   * Reads the entry called `name`: calls `reader(kind, bytes, start, end)` on the value's bytes
   * in segment memory and returns what it returns, or `undefined` for a missing name. The
   * reader must copy what it keeps, and must not throw on bytes that are torn (decode errors
   * are caught and the read retried); the result is only returned when the seqlock shows no
   * writer changed anything meanwhile.
   *
   * @throws {TypeError} For a bad name.
   * @throws {RangeError} For a name longer than 250 UTF-8 bytes.
   */
  read<T>(name: string, reader: ValueReader<T>): T | undefined {
    this.#key(name);
    const length = this.#nameLength;
    const hash = this.#nameHash;
    const u32 = this.#u32;
    const stripe = stripeWord(stripeOf(hash));
    const plain = this.#plainSeqLoads;
    for (let attempt = 0; attempt < OPTIMISTIC_TRIES; attempt++) {
      const epoch = plain ? u32[EPOCH]! : Atomics.load(u32, EPOCH);
      const before = plain ? u32[stripe]! : Atomics.load(u32, stripe);
      if (plain) Atomics.load(FENCE, 0); // the seqlock is read before the entry...
      // A writer is at work on this stripe (or died there): try again, then lock.
      if (((epoch | before) & 1) !== 0) continue;
      const result = this.#readAt(length, hash, reader);
      if (plain) Atomics.load(FENCE, 0); // ...and the entry before the seqlock again
      if ((plain ? u32[stripe]! : Atomics.load(u32, stripe)) !== before) continue;
      if ((plain ? u32[EPOCH]! : Atomics.load(u32, EPOCH)) !== epoch) continue;
      if (result === RETRY) continue;
      return this.#count(result);
    }
    // Contended, or a writer died mid-mutation: read under the lock (repairing if needed).
    this.#lockExclusive();
    try {
      // With the lock held and no mutation in progress, an odd stripe or epoch is a stale mark
      // (damage): settle it, or every later read of this stripe would come here.
      if (((u32[stripe]! | u32[EPOCH]!) & 1) !== 0) this.#settleSeqlock();
      let result = this.#readAt(length, hash, reader);
      if (result === RETRY) {
        // Nobody is writing, yet the entry cannot be read: the segment is damaged.
        this.#repairOrReset();
        result = this.#readAt(length, hash, reader);
        if (result === RETRY) {
          throw corruptError(this.#label, `the entry "${name}" cannot be read after a repair`);
        }
      }
      return this.#count(result);
    } finally {
      this.#unlock();
    }
  }

  #count<T>(result: T | undefined): T | undefined {
    if (result === undefined) {
      if (++this.#misses >= COUNTER_FLUSH) this.flushCounters();
    } else if (++this.#hits >= COUNTER_FLUSH) this.flushCounters();
    return result;
  }

  /** Finds and reads the value; `RETRY` when what it saw is torn or out of bounds. */
  #readAt<T>(length: number, hash: number, reader: ValueReader<T>): T | undefined | typeof RETRY {
    // The heap's bound, not the entry count: a reader must not load the store header's line,
    // which every write changes.
    const entry = this.#dir.find(this.#name, length, hash, this.#maxEntries + 8);
    if (entry === 0) return undefined;
    if (entry < 0) return RETRY;
    const tag = this.#u32[entry >>> 2]!;
    const start = entry + ENTRY_HEADER_BYTES + length;
    // The value runs to the block's end (its size word, just before the entry) less the slack
    // (and the expiry trailer).
    const end = this.#valueEnd(entry, tag);
    if (end < start || end > this.#heapEnd) return RETRY;
    // Gone from the instant it expires, whether or not a writer has reclaimed it yet.
    if (hasExpiry(tag) && expiryAt(this.#u32, trailerWord(this.#u32, entry)) <= this.#now()) {
      return undefined;
    }
    try {
      return reader((tag >>> TAG_KIND_SHIFT) & TAG_KIND_MASK, this.#u8, start, end, entry);
    } catch {
      return RETRY;
    }
  }

  /**
   * An entry's kind, size and timestamps, or `undefined` for a missing name.
   *
   * @throws {TypeError} For a bad name.
   */
  info(name: string): EntryInfo | undefined {
    const u32 = this.#u32;
    return this.read(name, (kind, _bytes, start, end, entry) => {
      const w = entry >>> 2;
      const high = u32[w + (E_TIMES_HIGH >>> 2)]!;
      return {
        kind,
        size: end - start,
        created: u32[w + (E_CREATED_LOW >>> 2)]! + (high & 0xffff) * TWO_32,
        written: u32[w + (E_WRITTEN_LOW >>> 2)]! + (high >>> 16) * TWO_32,
        version: this.#versionOf(entry),
        expires: expiryOf(u32, entry),
      };
    });
  }

  /**
   * A number that moves whenever any entry is written, deleted or evicted, or the store is
   * purged or repaired: a watcher polls it (a few plain loads, no lock, no shared write) and
   * looks at its names only when it moved.
   */
  changeCount(): number {
    const u32 = this.#u32;
    return (u32[ST_WRITES >>> 2]! + u32[ST_DELETES >>> 2]! + u32[ST_EVICTIONS >>> 2]! +
      u32[ST_EXPIRED >>> 2]! + Atomics.load(u32, EPOCH)) >>> 0;
  }

  /**
   * The version of the entry at `entry`, for a {@linkcode ValueReader} that wants it with the
   * value (read under the same seqlock check, so the two belong together).
   */
  versionAt(entry: number): number {
    return this.#versionOf(entry);
  }

  /** The expiry time of the entry at `entry` (0: none), for a {@linkcode ValueReader}. */
  expiresAt(entry: number): number {
    return expiryOf(this.#u32, entry);
  }

  /** An entry's version (see {@linkcode EntryInfo.version}). */
  #versionOf(entry: number): number {
    const u32 = this.#u32;
    return u32[(entry + E_VERSION_LOW) >>> 2]! +
      (u32[(entry + E_VERSION_HIGH) >>> 2]! & VERSION_HIGH_MASK) * TWO_32;
  }

  /** The time now, ms since the epoch. */
  #now(): number {
    return this.#clock === null ? Date.now() : this.#clock();
  }

  /** The name's hash of a valid entry, from its bytes (writers, repair and verify). */
  #hashOf = (entry: number): number => {
    const length = this.#u32[entry >>> 2]! >>> TAG_NAME_SHIFT;
    const start = entry + ENTRY_HEADER_BYTES;
    return hashBytes(this.#u8, length, start);
  };

  // -------------------------------------------------------------------------------------------
  // Mutations

  /**
   * Writes `name` = `value` (bytes, with its codec `kind`), replacing any earlier value as one
   * step: readers see the old value or the new one. When it does not fit, the oldest entries
   * are evicted until usage is at the watermark and the value fits.
   *
   * @throws {TypeError} For a bad name.
   * @throws {RangeError} For a name too long, or a value that cannot fit even in an empty
   * store; nothing is evicted then.
   */
  write(
    name: string,
    kind: number,
    value: Uint8Array,
    ifVersion?: number | null,
    ttl = 0,
  ): boolean {
    this.#key(name);
    const length = this.#nameLength;
    const hash = this.#nameHash;
    const trailer = ttl > 0 ? EXPIRY_TRAILER_BYTES : 0;
    const need = ENTRY_HEADER_BYTES + length + value.length + trailer;
    this.#lockExclusive();
    try {
      if (length + value.length + trailer > this.maxEntryBytes) {
        throw new RangeError(
          `Cannot write "${name}": ${value.length} bytes do not fit in the store even when empty (at most ${
            this.maxEntryBytes - length - trailer
          } bytes with this name)`,
        );
      }
      let now = -1; // read inside the mutation, unless the condition needs it first
      if (ifVersion !== undefined) {
        now = this.#now();
        if (!this.#versionIs(length, hash, ifVersion, now)) return false;
      }
      this.#mutate(() => this.#write(length, hash, kind, value, need, -1, ttl, 0, now));
      return true;
    } finally {
      this.#unlock();
    }
  }

  /**
   * Whether the entry of the current name has version `version` (`null`: whether there is
   * none). Lock held.
   */
  #versionIs(length: number, hash: number, version: number | null, now: number): boolean {
    const found = this.#find(length, hash);
    const entry = found !== 0 && this.#expired(found, now) ? 0 : found;
    return version === null ? entry === 0 : entry !== 0 && this.#versionOf(entry) === version;
  }

  /** Whether the entry at `entry` has an expiry time and it has come by `now`. */
  #expired(entry: number, now: number): boolean {
    const u32 = this.#u32;
    return hasExpiry(u32[entry >>> 2]!) && expiryAt(u32, trailerWord(u32, entry)) <= now;
  }

  /** The entry of the current name, or 0; a broken chain is repaired first. Lock held. */
  #find(length: number, hash: number): number {
    let entry = this.#dir.find(this.#name, length, hash, this.#walkLimit());
    if (entry < 0) {
      this.#repairOrReset();
      entry = this.#dir.find(this.#name, length, hash, this.#walkLimit());
      if (entry < 0) throw corruptError(this.#label, "a directory chain is broken after a repair");
    }
    return entry;
  }

  /**
   * Adds `delta` to the number stored under `name` (kind `numberKind`, 8 bytes of float64),
   * or writes `initial + delta` when there is none, as one step under the lock: concurrent
   * increments from any number of processes all count. The new value is a new version.
   *
   * @returns The new value.
   * @throws {TypeError} For a bad name, or when the entry holds something other than a number
   * (it is left unchanged).
   */
  increment(
    name: string,
    delta: number,
    initial: number,
    numberKind: number,
    ttl = 0,
  ): number {
    this.#key(name);
    const length = this.#nameLength;
    const hash = this.#nameHash;
    this.#lockExclusive();
    try {
      const now = this.#now();
      const found = this.#find(length, hash);
      const entry = found !== 0 && this.#expired(found, now) ? 0 : found;
      let value = initial + delta;
      // A new (or expired) entry gets the given time to live; a live one keeps its expiry.
      const kept = entry !== 0 ? expiryOf(this.#u32, entry) : 0;
      if (entry !== 0) {
        const tag = this.#u32[entry >>> 2]!;
        const start = entry + ENTRY_HEADER_BYTES + length;
        const end = this.#valueEnd(entry, tag);
        if (((tag >>> TAG_KIND_SHIFT) & TAG_KIND_MASK) !== numberKind || end - start !== 8) {
          throw new TypeError(
            `Cannot increment "${name}": it holds a value that is not a number; write a number or delete it first`,
          );
        }
        for (let i = 0; i < 8; i++) NUMBER_BYTES[i] = this.#u8[start + i]!;
        value = NUMBER[0]! + delta;
      }
      if (!Number.isFinite(value)) {
        throw new RangeError(
          `Cannot increment "${name}": the result ${value} is not a finite number`,
        );
      }
      NUMBER[0] = value;
      const expiring = entry === 0 ? ttl > 0 : kept > 0;
      const need = ENTRY_HEADER_BYTES + length + 8 + (expiring ? EXPIRY_TRAILER_BYTES : 0);
      this.#mutate((repaired) =>
        this.#write(
          length,
          hash,
          numberKind,
          NUMBER_BYTES,
          need,
          repaired ? -1 : found,
          entry === 0 ? ttl : 0,
          kept,
          now,
        )
      );
      return value;
    } finally {
      this.#unlock();
    }
  }

  /**
   * Reads, computes and writes one entry as one step: under the lock, `compute` gets the
   * current value's kind and bytes (a private copy; `undefined` when there is none) and returns
   * what to store (`null`: delete the entry, `undefined`: leave it as it is). Every other writer
   * of the store waits while `compute` runs; a `compute` that throws changes nothing. A call on
   * this store from inside `compute` throws `ERR_MEMALLOC_REENTRANT`.
   *
   * @returns Whether the store changed.
   * @throws {TypeError} For a bad name; whatever `compute` throws.
   * @throws {RangeError} When the new value cannot fit even in an empty store.
   */
  update(
    name: string,
    compute: (current: { kind: number; bytes: Uint8Array } | undefined) =>
      | { kind: number; bytes: Uint8Array; ttl?: number }
      | null
      | undefined,
  ): boolean {
    this.#key(name);
    this.#lockExclusive();
    try {
      const length = this.#nameLength;
      const hash = this.#nameHash;
      const now = this.#now();
      const found = this.#find(length, hash);
      const entry = found !== 0 && this.#expired(found, now) ? 0 : found;
      let current: { kind: number; bytes: Uint8Array } | undefined;
      if (entry !== 0) {
        const tag = this.#u32[entry >>> 2]!;
        const start = entry + ENTRY_HEADER_BYTES + length;
        current = {
          kind: (tag >>> TAG_KIND_SHIFT) & TAG_KIND_MASK,
          bytes: this.#u8.slice(start, this.#valueEnd(entry, tag)),
        };
      }
      // The name's bytes stay in #name: a reentrant call, which could overwrite them, throws
      // before it touches them.
      this.#busy = true;
      let next: { kind: number; bytes: Uint8Array; ttl?: number } | null | undefined;
      try {
        next = compute(current);
      } finally {
        this.#busy = false;
      }
      if (next === undefined) return false;
      if (next === null) {
        if (entry === 0) return false;
        this.#mutate((repaired) => {
          const found = repaired
            ? this.#dir.find(this.#name, length, hash, this.#walkLimit())
            : entry;
          if (found < 0) throw new Corrupt("a directory chain is broken");
          if (found !== 0) {
            this.#remove(found);
            this.#countUp(ST_DELETES);
          }
        });
        return true;
      }
      const ttl = next.ttl ?? 0;
      const trailer = ttl > 0 ? EXPIRY_TRAILER_BYTES : 0;
      if (length + next.bytes.length + trailer > this.maxEntryBytes) {
        throw new RangeError(
          `Cannot update "${name}": ${next.bytes.length} bytes do not fit in the store even when empty (at most ${
            this.maxEntryBytes - length - trailer
          } bytes with this name)`,
        );
      }
      const need = ENTRY_HEADER_BYTES + length + next.bytes.length + trailer;
      this.#mutate((repaired) =>
        this.#write(
          length,
          hash,
          next.kind,
          next.bytes,
          need,
          repaired ? -1 : found,
          ttl,
          0,
          now,
        )
      );
      return true;
    } finally {
      this.#unlock();
    }
  }

  /** The end of an entry's value: its block's usable end less the slack and the trailer. */
  #valueEnd(entry: number, tag: number): number {
    return entry + (this.#u32[(entry >>> 2) - 1]! >>> 2) * 4 - 4 -
      ((tag >>> TAG_SLACK_SHIFT) & TAG_SLACK_MASK) -
      (hasExpiry(tag) ? EXPIRY_TRAILER_BYTES : 0);
  }

  /** Most steps a walk of a bucket chain or of the write order may take. */
  #walkLimit(): number {
    return Math.min(this.#u32[ST_ENTRIES >>> 2]!, this.#maxEntries) + 8;
  }

  /**
   * The write under the lock. `found` is the name's entry when the caller has just looked it
   * up under this lock (0: none), or -1 to look it up here. The new entry expires `ttl` ms
   * from now, or at `expires` when that is not 0 (an increment keeps the entry's expiry), or
   * never. `now` is the caller's clock reading, or -1 to read the clock here.
   */
  #write(
    length: number,
    hash: number,
    kind: number,
    value: Uint8Array,
    need: number,
    found: number,
    ttl: number,
    expires: number,
    now: number,
  ): void {
    const u32 = this.#u32;
    const heap = this.#heap;
    let old = found >= 0 ? found : this.#dir.find(this.#name, length, hash, this.#walkLimit());
    if (old < 0) throw new Corrupt("a directory chain is broken");
    this.#touch(hash); // this name's chain changes: its readers retry
    u32[ST_JOURNAL_OLD >>> 2] = 0;
    u32[ST_JOURNAL_NEW >>> 2] = 0;
    u32[ST_JOURNAL_PHASE >>> 2] = 0;
    u32[ST_JOURNAL_OP >>> 2] = JOURNAL_WRITE;
    if (now < 0) now = this.#now();
    if (expires === 0) expires = expiryTime(now, ttl);
    if (old !== 0 && this.#expired(old, now)) {
      // The name's old value has expired: it goes, and this write makes a new entry.
      this.#linked(old);
      this.#remove(old);
      this.#countUp(ST_EXPIRED);
      old = 0;
    }
    // Each write also reclaims a couple of entries that have expired, so that they do not wait
    // for a full heap: O(log n) each.
    this.#reclaimExpired(now, 2);
    u32[ST_JOURNAL_OLD >>> 2] = old;
    this.#keep = old;

    if (expires > 0) {
      // The expiry order's slot first, so that the entry, once made, always gets one.
      const bytes = this.#expiry.wanted(this.#expiry.count + 1);
      if (bytes > 0) {
        const block = this.#allocRoom(bytes, now);
        if (block !== NO_ROOM) this.#expiry.adopt(block);
      }
    }
    let entry = this.#allocRoom(need, now);
    old = this.#keep;
    if (entry === NO_ROOM && u32[ST_ENTRIES >>> 2] === 0) {
      // Empty, yet the directory's bucket array (or the expiry order's) splits the free space:
      // lay the heap out afresh, the value first and a new directory after it.
      this.#touchAll();
      const table = this.#takeRecordTable();
      heap.reset();
      this.#expiry.clear();
      entry = heap.alloc(need);
      // The value may be records over the table: it comes back before the directory.
      this.#putRecordTable(table);
      const count = this.#initialBuckets();
      const buckets = heap.alloc(count * 4);
      if (buckets === NO_ROOM) throw new Corrupt(`no room for a directory beside ${need} bytes`);
      this.#dir.rebuild(buckets, count, [], this.#hashOf);
      u32[ST_ORDER_HEAD >>> 2] = 0;
      u32[ST_ORDER_TAIL >>> 2] = 0;
    }
    if (entry === NO_ROOM) throw new Corrupt(`no room for ${need} bytes in an empty heap`);
    u32[ST_JOURNAL_NEW >>> 2] = entry;

    const w = entry >>> 2;
    const slack = (u32[w - 1]! >>> 2) * 4 - 4 - need; // the block's usable bytes, less ours
    if (slack < 0 || slack > MAX_SLACK) {
      throw new Corrupt(`a block of ${need} bytes has ${slack} over`);
    }
    const written = clampTime(now);
    let createdLow = written >>> 0;
    let createdHigh = Math.floor(written / TWO_32);
    if (old !== 0) {
      createdLow = u32[(old + E_CREATED_LOW) >>> 2]!;
      createdHigh = u32[(old + E_TIMES_HIGH) >>> 2]! & 0xffff;
    }
    u32[w + (E_CREATED_LOW >>> 2)] = createdLow;
    u32[w + (E_WRITTEN_LOW >>> 2)] = written >>> 0;
    u32[w + (E_TIMES_HIGH >>> 2)] = createdHigh | (Math.floor(written / TWO_32) << 16);
    // The next version: the counter goes up first, so a crash here only skips a number.
    const counter = ST_VERSION >>> 2;
    let low = u32[counter]! + 1;
    let high = u32[counter + 1]!;
    if (low > 0xffff_ffff) {
      low = 0;
      high++;
    }
    u32[counter] = low;
    u32[counter + 1] = high;
    u32[w + (E_VERSION_LOW >>> 2)] = low;
    u32[w + (E_VERSION_HIGH >>> 2)] = high | nameCheck(hash);
    const at = entry + ENTRY_HEADER_BYTES;
    const u8 = this.#u8;
    const scratch = this.#name;
    // A loop, not set(subarray(...)): the view would be an allocation on every write.
    for (let i = 0; i < length; i++) u8[at + i] = scratch[i]!;
    this.#u8.set(value, at + length);
    let flags = 0;
    if (expires > 0) {
      writeTrailer(u32, entry, expires);
      flags = FLAG_EXPIRES;
    }
    u32[w] = ENTRY_TAG | (kind << TAG_KIND_SHIFT) | (slack << TAG_SLACK_SHIFT) |
      (flags << TAG_FLAGS_SHIFT) | (length << TAG_NAME_SHIFT);

    // Commit: one store links the new entry where readers look.
    if (old === 0) this.#dir.insert(entry, hash);
    else this.#dir.replace(old, entry, hash);
    u32[ST_JOURNAL_PHASE >>> 2] = 1;

    this.#appendToOrder(entry);
    if (expires > 0) this.#expiry.insert(entry);
    if (old !== 0) {
      if (hasExpiry(u32[old >>> 2]!)) this.#expiry.remove(old);
      this.#unlinkFromOrder(old);
      u32[old >>> 2] = 0; // no longer an entry, even if a crash stops us before free()
      heap.free(old);
    } else {
      u32[ST_ENTRIES >>> 2]!++;
      this.#growDirectory();
    }
    this.#countUp(ST_WRITES);
  }

  /**
   * Removes `name`.
   *
   * @returns Whether there was such an entry.
   * @throws {TypeError} For a bad name.
   */
  delete(name: string, ifVersion?: number): boolean {
    this.#key(name);
    const length = this.#nameLength;
    const hash = this.#nameHash;
    this.#lockExclusive();
    try {
      const entry = this.#find(length, hash);
      if (entry === 0) return false;
      if (this.#expired(entry, this.#now())) {
        // Gone already: reclaim it, and report that there was nothing to delete.
        this.#mutate((repaired) => {
          const found = repaired
            ? this.#dir.find(this.#name, length, hash, this.#walkLimit())
            : entry;
          if (found < 0) throw new Corrupt("a directory chain is broken");
          if (found !== 0 && this.#expired(found, this.#now())) {
            this.#remove(found);
            this.#countUp(ST_EXPIRED);
          }
        });
        return false;
      }
      if (ifVersion !== undefined && this.#versionOf(entry) !== ifVersion) return false;
      return this.#mutate((repaired) => {
        // After a repair the entry may have moved or gone: look again.
        const found = repaired
          ? this.#dir.find(this.#name, length, hash, this.#walkLimit())
          : entry;
        if (found < 0) throw new Corrupt("a directory chain is broken");
        if (found === 0) return false;
        this.#remove(found);
        this.#countUp(ST_DELETES);
        return true;
      });
    } finally {
      this.#unlock();
    }
  }

  /**
   * Evicts the oldest-written entries until usage is at or below the watermark.
   *
   * @returns The number of entries evicted.
   */
  clean(): number {
    this.#lockExclusive();
    try {
      const now = this.#now();
      if (this.#usedBytes() <= this.#watermarkBytes() && this.#expiry.firstExpiry() > now) {
        return 0;
      }
      return this.#mutate(() =>
        this.#reclaimExpired(now, Infinity) + this.#evictTo(this.#watermarkBytes(), 0)
      );
    } finally {
      this.#unlock();
    }
  }

  /**
   * Removes every entry at once.
   *
   * @returns The number of entries removed.
   */
  purge(): number {
    this.#lockExclusive();
    try {
      const removed = this.#u32[ST_ENTRIES >>> 2]!;
      this.#mutate(() => {
        this.#u32[ST_JOURNAL_OP >>> 2] = JOURNAL_PURGE;
        this.#purge();
      });
      return removed;
    } finally {
      this.#unlock();
    }
  }

  #purge(): void {
    this.#touchAll();
    const table = this.#takeRecordTable();
    this.#heap.reset();
    this.#newDirectory(this.#initialBuckets());
    this.#putRecordTable(table);
  }

  // -------------------------------------------------------------------------------------------
  // Eviction and write order

  #watermarkBytes(): number {
    return Math.floor(this.autoclean * this.#size);
  }

  #usedBytes(): number {
    return this.#size - this.#heap.freeBytes;
  }

  /**
   * Removes up to `most` entries that have expired by `now`, soonest-expired first, from the
   * expiry order: O(log n) each.
   *
   * @returns How many it removed.
   */
  #reclaimExpired(now: number, most: number): number {
    const u32 = this.#u32;
    let reclaimed = 0;
    while (reclaimed < most) {
      const first = this.#linked(this.#expiry.first());
      if (first === 0) break;
      if (!hasExpiry(u32[first >>> 2]!)) {
        throw new Corrupt("the expiry order holds an entry without an expiry");
      }
      if (expiryAt(u32, trailerWord(u32, first)) > now) break;
      if (reclaimed > this.#maxEntries) throw new Corrupt("the expiry order does not end");
      this.#remove(first);
      this.#countUp(ST_EXPIRED);
      reclaimed++;
    }
    return reclaimed;
  }

  /**
   * Allocates `need` bytes. When the heap is full: every expired entry goes first; then the
   * oldest-written entries are evicted down to the watermark, and one by one after that while
   * fragmentation keeps the block from fitting, `#keep` (the entry a write replaces) last of all
   * (it becomes 0 once evicted). Lock held, inside a mutation.
   *
   * @returns The block, or `NO_ROOM` when the heap is empty and still has no such block.
   */
  #allocRoom(need: number, now: number): number {
    const heap = this.#heap;
    let block = heap.alloc(need);
    if (block !== NO_ROOM) return block;
    if (this.#reclaimExpired(now, Infinity) > 0) {
      block = heap.alloc(need);
      if (block !== NO_ROOM) return block;
    }
    this.#evictTo(this.#watermarkBytes(), this.#keep);
    block = heap.alloc(need);
    for (let steps = 0; block === NO_ROOM; steps++) {
      // Fragmentation: keep evicting, oldest first, the old value last of all.
      const victim = this.#oldestExcept(this.#keep);
      if (victim === 0) break;
      if (steps > this.#maxEntries) throw new Corrupt("the write order does not end");
      if (victim === this.#keep) {
        this.#keep = 0;
        this.#u32[ST_JOURNAL_OLD >>> 2] = 0;
      }
      this.#evict(victim);
      block = heap.alloc(need);
    }
    return block;
  }

  /** Evicts oldest-first, never `keep`, until usage is at or below `target`. */
  #evictTo(target: number, keep: number): number {
    let evicted = 0;
    while (this.#usedBytes() > target) {
      const victim = this.#oldestExcept(keep);
      if (victim === 0 || victim === keep) break;
      if (evicted > this.#maxEntries) throw new Corrupt("the write order does not end");
      this.#evict(victim);
      evicted++;
    }
    return evicted;
  }

  /** The oldest entry other than `keep`; `keep` itself when it is the only one; 0 when none. */
  #oldestExcept(keep: number): number {
    const u32 = this.#u32;
    const oldest = this.#linked(u32[ST_ORDER_HEAD >>> 2]!);
    if (oldest !== keep || oldest === 0) return oldest;
    const next = this.#linked(u32[(oldest + E_ORDER_NEXT) >>> 2]!);
    return next === 0 ? keep : next;
  }

  #evict(entry: number): void {
    this.#remove(entry);
    this.#countUp(ST_EVICTIONS);
  }

  #remove(entry: number): void {
    const u32 = this.#u32;
    if (u32[ST_ENTRIES >>> 2] === 0) throw new Corrupt("an entry is linked but none is counted");
    const hash = this.#hashOf(entry);
    this.#touch(hash);
    this.#dir.remove(entry, hash);
    if (hasExpiry(u32[entry >>> 2]!)) this.#expiry.remove(entry);
    this.#unlinkFromOrder(entry);
    u32[entry >>> 2] = 0;
    this.#heap.free(entry);
    u32[ST_ENTRIES >>> 2]!--;
  }

  #appendToOrder(entry: number): void {
    const u32 = this.#u32;
    const tail = this.#linked(u32[ST_ORDER_TAIL >>> 2]!);
    u32[(entry + E_ORDER_PREV) >>> 2] = tail;
    u32[(entry + E_ORDER_NEXT) >>> 2] = 0;
    if (tail === 0) u32[ST_ORDER_HEAD >>> 2] = entry;
    else u32[(tail + E_ORDER_NEXT) >>> 2] = entry;
    u32[ST_ORDER_TAIL >>> 2] = entry;
  }

  #unlinkFromOrder(entry: number): void {
    const u32 = this.#u32;
    const prev = this.#linked(u32[(entry + E_ORDER_PREV) >>> 2]!);
    const next = this.#linked(u32[(entry + E_ORDER_NEXT) >>> 2]!);
    if (prev === 0) u32[ST_ORDER_HEAD >>> 2] = next;
    else u32[(prev + E_ORDER_NEXT) >>> 2] = next;
    if (next === 0) u32[ST_ORDER_TAIL >>> 2] = prev;
    else u32[(next + E_ORDER_PREV) >>> 2] = prev;
  }

  /**
   * `entry` when it is 0 or a link a writer may follow: in the heap, aligned, tagged as an entry.
   * Throws {@linkcode Corrupt} otherwise, so that a damaged link is repaired, never written
   * through.
   */
  #linked(entry: number): number {
    if (
      entry !== 0 &&
      (!this.#dir.isEntryOffset(entry) || (this.#u32[entry >>> 2]! & 0xff) !== ENTRY_TAG)
    ) {
      throw new Corrupt(`a link points at ${entry}, which is not an entry`);
    }
    return entry;
  }

  /** Entries in write order, oldest first. Writers only; stops at a damaged link. */
  *#inOrder(): Generator<number> {
    const u32 = this.#u32;
    const limit = this.#walkLimit();
    let entry = this.#linked(u32[ST_ORDER_HEAD >>> 2]!);
    for (let steps = 0; entry !== 0; steps++) {
      if (steps > limit) throw new Corrupt("the write order does not end");
      const next = this.#linked(u32[(entry + E_ORDER_NEXT) >>> 2]!);
      yield entry;
      entry = next;
    }
  }

  /**
   * The entries whose name starts with `prefix`, in write order (oldest first), with their
   * values copied when `values` is true. The lock is taken for one chunk at a time (at most
   * {@linkcode SCAN_CHUNK} entries or about {@linkcode SCAN_BYTES} bytes of names and values),
   * never across a `yield`, so writers wait for one chunk at most and memory stays bounded.
   *
   * Between chunks other processes may write. An entry that stays unchanged during the walk is
   * yielded exactly once; one written during it may be yielded again at its new place in the
   * write order (newest last); one deleted or evicted may be missed.
   *
   * @throws {MemallocError} `ERR_MEMALLOC_REENTRANT` from inside an `update` callback.
   */
  *scan(prefix: Uint8Array, values: boolean): Generator<ScannedEntry, void, undefined> {
    let cursor = 0;
    let cursorVersion = 0;
    for (;;) {
      const chunk: ScannedEntry[] = [];
      let done: boolean;
      this.#lockExclusive();
      try {
        try {
          [cursor, cursorVersion, done] = this.#scanChunk(
            cursor,
            cursorVersion,
            prefix,
            values,
            chunk,
          );
        } catch (error) {
          if (!(error instanceof Corrupt)) throw error;
          // A damaged link: repair, then go on after the last version seen (found by version).
          this.#repairOrReset();
          chunk.length = 0;
          [cursor, cursorVersion, done] = this.#scanChunk(-1, cursorVersion, prefix, values, chunk);
        }
      } finally {
        this.#unlock();
      }
      yield* chunk;
      if (done) return;
    }
  }

  /**
   * One chunk of {@linkcode Store.scan}, from the entry after `cursor` (0: from the oldest; an
   * entry that no longer has `version`, or -1: from the first written after `version`). Lock
   * held. Returns the new cursor, its version, and whether the walk is over.
   */
  #scanChunk(
    cursor: number,
    version: number,
    prefix: Uint8Array,
    values: boolean,
    out: ScannedEntry[],
  ): [number, number, boolean] {
    const u32 = this.#u32;
    const u8 = this.#u8;
    const limit = this.#walkLimit();
    let entry: number;
    if (cursor === 0) {
      entry = this.#linked(u32[ST_ORDER_HEAD >>> 2]!);
    } else if (
      cursor > 0 && this.#dir.isEntryOffset(cursor) && (u32[cursor >>> 2]! & 0xff) === ENTRY_TAG &&
      this.#versionOf(cursor) === version
    ) {
      entry = this.#linked(u32[(cursor + E_ORDER_NEXT) >>> 2]!);
    } else {
      // The cursor's entry was overwritten, deleted or evicted since: versions grow along the
      // write order, so the walk goes on at the first entry written after it.
      entry = this.#linked(u32[ST_ORDER_HEAD >>> 2]!);
      for (let steps = 0; entry !== 0 && this.#versionOf(entry) <= version; steps++) {
        if (steps > limit) throw new Corrupt("the write order does not end");
        entry = this.#linked(u32[(entry + E_ORDER_NEXT) >>> 2]!);
      }
    }
    let bytes = 0;
    const now = this.#now();
    for (let steps = 0; entry !== 0; steps++) {
      if (steps > limit) throw new Corrupt("the write order does not end");
      if (out.length >= SCAN_CHUNK || bytes >= SCAN_BYTES) return [cursor, version, false];
      const tag = u32[entry >>> 2]!;
      const length = tag >>> TAG_NAME_SHIFT;
      const nameStart = entry + ENTRY_HEADER_BYTES;
      // An expired entry is gone for every reader, reclaimed or not.
      let match = length >= prefix.length && !this.#expired(entry, now);
      for (let i = 0; match && i < prefix.length; i++) match = u8[nameStart + i] === prefix[i];
      if (match) {
        const valueStart = nameStart + length;
        const valueEnd = this.#valueEnd(entry, tag);
        if (valueEnd < valueStart || valueEnd > this.#heapEnd) throw new Corrupt("an entry's size");
        const w = entry >>> 2;
        const high = u32[w + (E_TIMES_HIGH >>> 2)]!;
        out.push({
          name: u8.slice(nameStart, valueStart),
          kind: (tag >>> TAG_KIND_SHIFT) & TAG_KIND_MASK,
          value: values ? u8.slice(valueStart, valueEnd) : undefined,
          size: valueEnd - valueStart,
          created: u32[w + (E_CREATED_LOW >>> 2)]! + (high & 0xffff) * TWO_32,
          written: u32[w + (E_WRITTEN_LOW >>> 2)]! + (high >>> 16) * TWO_32,
          version: this.#versionOf(entry),
          expires: expiryOf(u32, entry),
        });
        bytes += length + (values ? valueEnd - valueStart : 0) + 64;
      }
      cursor = entry;
      version = this.#versionOf(entry);
      entry = this.#linked(u32[(entry + E_ORDER_NEXT) >>> 2]!);
    }
    return [cursor, version, true];
  }

  /** Doubles the bucket array when there are more entries than buckets and the heap has room. */
  #growDirectory(): void {
    const u32 = this.#u32;
    const count = u32[ST_BUCKET_COUNT >>> 2]!;
    if (u32[ST_ENTRIES >>> 2]! <= count || count >= 1 << 28) return;
    const buckets = this.#heap.alloc(count * 8);
    if (buckets === NO_ROOM) return; // chains get longer; lookups stay correct
    const old = u32[ST_BUCKETS >>> 2]!;
    this.#touchAll(); // every chain moves
    this.#dir.rebuild(buckets, count * 2, this.#inOrder(), this.#hashOf);
    this.#heap.free(old);
  }

  // -------------------------------------------------------------------------------------------
  // Locking, the seqlock and crash repair

  /** The error for a call on the store from inside an `update` callback. */
  #reentrant(): MemallocError {
    return new MemallocError(
      `Cannot use store "${this.#label}" from inside its own update() callback: it holds the store's lock; compute the value from the callback's argument and return it`,
      { code: "ERR_MEMALLOC_REENTRANT", store: this.#label },
    );
  }

  #lockExclusive(): void {
    if (this.#busy) throw this.#reentrant();
    const ownerDied = this.#lock.lock(true) === true;
    if (ownerDied || this.#needsRepair()) this.#repairOrReset();
  }

  #unlock(): void {
    this.#lock.unlock();
  }

  /**
   * Whether the segment needs a repair before anyone changes it: a mutation was interrupted
   * (the seqlock is odd or the journal is set), or a root in the store header is out of range.
   * A few comparisons, on every exclusive lock.
   */
  #needsRepair(): boolean {
    const u32 = this.#u32;
    if ((Atomics.load(u32, ST_SEQ >>> 2) & 1) !== 0) return true;
    if (u32[ST_JOURNAL_OP >>> 2] !== JOURNAL_NONE) return true;
    const autoclean = this.#f64[ST_AUTOCLEAN >>> 3]!;
    const count = u32[ST_BUCKET_COUNT >>> 2]!;
    const buckets = u32[ST_BUCKETS >>> 2]!;
    const entries = u32[ST_ENTRIES >>> 2]!;
    const head = u32[ST_ORDER_HEAD >>> 2]!;
    const tail = u32[ST_ORDER_TAIL >>> 2]!;
    const records = u32[ST_RECORDS >>> 2]!;
    return !(autoclean > 0 && autoclean <= 1) ||
      (records !== 0 && !this.#isRecordTable(records)) ||
      count < MIN_BUCKETS || (count & (count - 1)) !== 0 ||
      (buckets & 3) !== 0 || buckets < this.#heap.offset || buckets + count * 4 > this.#heapEnd ||
      entries > this.#maxEntries ||
      (entries === 0) !== (head === 0) || (head === 0) !== (tail === 0) ||
      (head !== 0 && (!this.#dir.isEntryOffset(head) || !this.#dir.isEntryOffset(tail)));
  }

  /**
   * Runs one mutation under the exclusive lock (the caller holds it): the seqlock goes odd so
   * readers retry, and even again when done. If the body throws half-way (it found the segment
   * damaged, or a bug), the segment is repaired at once, while we still hold the lock, and the
   * body runs once more on the repaired segment (`repaired` is then true: offsets found before
   * are stale). A second failure is an `ERR_MEMALLOC_CORRUPT` error, with the segment repaired
   * again.
   */
  #mutate<T>(body: (repaired: boolean) => T): T {
    const u32 = this.#u32;
    for (let attempt = 0;; attempt++) {
      // Odd: a mutation is in progress. Only lock holders read the mark, after the lock's own
      // barrier, so plain stores do (readers look at the stripes).
      u32[ST_SEQ >>> 2]!++;
      let result: T;
      try {
        result = body(attempt > 0);
      } catch (error) {
        this.#repairOrReset(); // leaves the seqlock even
        if (attempt === 0) continue;
        throw corruptError(
          this.#label,
          `${error instanceof Error ? error.message : String(error)} (after a repair)`,
          error,
        );
      }
      u32[ST_JOURNAL_OP >>> 2] = JOURNAL_NONE;
      this.#release(); // the touched stripes even: their readers may go on
      u32[ST_SEQ >>> 2]!++; // even: done
      return result;
    }
  }

  /**
   * Makes the stripe of `hash` odd, once per mutation, before the mutation changes that name's
   * directory chain or an entry on it: readers of the stripe retry until {@linkcode release}.
   * `| 1` rather than `+ 1`, so that a stripe found odd (a stale mark) stays odd meanwhile.
   */
  #touch(hash: number): void {
    const stripe = stripeOf(hash);
    if (this.#isTouched[stripe] !== 0) return;
    this.#isTouched[stripe] = 1;
    this.#touched[this.#touchedCount++] = stripe;
    const index = stripeWord(stripe);
    Atomics.store(this.#u32, index, this.#u32[index]! | 1);
  }

  /**
   * Adds one to a u64 counter that only lock holders change (writes, deletes, evictions), as
   * two u32 words with a carry: plain stores, no BigInt. (Hits and misses, which readers add
   * without the lock, use Atomics.)
   */
  #countUp(offset: number): void {
    const u32 = this.#u32;
    const low = offset >>> 2;
    const next = u32[low]! + 1;
    u32[low] = next;
    if (next > 0xffff_ffff) u32[low + 1]!++;
  }

  /** Makes the epoch odd for the rest of the mutation: every reader retries. */
  #touchAll(): void {
    if (this.#epochTouched) return;
    this.#epochTouched = true;
    Atomics.store(this.#u32, EPOCH, this.#u32[EPOCH]! | 1);
  }

  /** The end of a mutation: every stripe it touched, and the epoch, even again. */
  #release(): void {
    const u32 = this.#u32;
    const touched = this.#touched;
    const isTouched = this.#isTouched;
    for (let i = 0; i < this.#touchedCount; i++) {
      const stripe = touched[i]!;
      const index = stripeWord(stripe);
      Atomics.store(u32, index, (u32[index]! | 1) + 1);
      isTouched[stripe] = 0;
    }
    this.#touchedCount = 0;
    if (this.#epochTouched) {
      this.#epochTouched = false;
      Atomics.store(u32, EPOCH, (u32[EPOCH]! | 1) + 1);
    }
  }

  /**
   * Every stripe and the epoch even, whatever marks a dead writer or damage left (with the
   * epoch made odd first, so that readers keep off until all are even). Lock held, after a
   * repair or where no mutation is in progress.
   */
  #settleSeqlock(): void {
    const u32 = this.#u32;
    this.#touchAll();
    for (let s = 0; s < STRIPES; s++) {
      const index = stripeWord(s);
      if ((u32[index]! & 1) !== 0) Atomics.store(u32, index, u32[index]! + 1);
    }
    this.#release(); // the touched stripes (now even) move on by two; the epoch even last
  }

  /**
   * Repairs the segment (see {@linkcode Store.repair}); if the repair itself fails, formats the
   * store afresh, losing its entries but keeping its counters. Call with the exclusive lock held.
   * Never throws: whatever the segment holds, the store is usable afterwards.
   */
  #repairOrReset(): void {
    try {
      this.repair();
    } catch {
      this.#heap.reset();
      this.#formatAfterLoss();
    }
  }

  /**
   * Repairs the segment after a process died (or threw) in the middle of a mutation. Call with
   * the exclusive lock held. It rebuilds the heap's free lists from the block headers, takes as
   * live every used block that is a valid entry, settles the interrupted write from the journal
   * (before its commit the new entry is dropped, after it the old one), frees every other block,
   * and rebuilds the directory and the write order. Counters are kept.
   *
   * @returns What it found wrong and fixed.
   */
  repair(): string[] {
    const u32 = this.#u32;
    const heap = this.#heap;
    const problems: string[] = [];
    const seq = Atomics.load(u32, ST_SEQ >>> 2);
    if ((seq & 1) === 0) Atomics.store(u32, ST_SEQ >>> 2, seq + 1); // a mutation is in progress
    this.#touchAll(); // readers keep off

    const op = u32[ST_JOURNAL_OP >>> 2]!;
    if (op !== JOURNAL_NONE || (seq & 1) !== 0) {
      problems.push(
        `interrupted ${
          op === JOURNAL_PURGE ? "purge" : op === JOURNAL_WRITE ? "write" : "mutation"
        }`,
      );
    }
    problems.push(...heap.rebuild());
    const autoclean = this.#f64[ST_AUTOCLEAN >>> 3]!;
    if (!(autoclean > 0 && autoclean <= 1)) {
      problems.push(`watermark ${autoclean} out of range: set to ${DEFAULT_WATERMARK}`);
      this.#f64[ST_AUTOCLEAN >>> 3] = DEFAULT_WATERMARK;
    }

    if (op === JOURNAL_PURGE) {
      this.#purge();
    } else {
      let drop = 0;
      if (op === JOURNAL_WRITE) {
        drop = u32[ST_JOURNAL_PHASE >>> 2] === 1
          ? u32[ST_JOURNAL_OLD >>> 2]!
          : u32[ST_JOURNAL_NEW >>> 2]!;
      }
      const buckets = u32[ST_BUCKETS >>> 2]!;
      const bucketCount = u32[ST_BUCKET_COUNT >>> 2]!;
      let bucketsOk = false;
      const expiryArray = u32[ST_EXPIRY_HEAP >>> 2]!;
      let expiryKept = false;
      const records = u32[ST_RECORDS >>> 2]!;
      let recordsKept = false;
      const live: number[] = [];
      // Index in `live` by name hash; names whose hash another name has, by the name itself.
      const byHash = new Map<number, number>();
      const byName = new Map<string, number>();
      const orphans: number[] = [];
      for (const block of heap.blocks()) {
        if (block.free) continue;
        if (
          block.offset === buckets && bucketCount > 0 && (bucketCount & (bucketCount - 1)) === 0 &&
          bucketCount * 4 <= block.size
        ) {
          bucketsOk = true;
          continue;
        }
        if (block.offset !== drop && this.#isValidEntry(block.offset, block.size)) {
          // Two entries of one name (corruption): keep the later write.
          const hash = this.#hashOf(block.offset);
          let other = byHash.get(hash);
          if (other === undefined) {
            byHash.set(hash, live.length);
            live.push(block.offset);
            continue;
          }
          if (!this.#sameName(live[other]!, block.offset)) {
            const key = this.#entryKey(block.offset);
            other = byName.get(key);
            if (other === undefined) {
              byName.set(key, live.length);
              live.push(block.offset);
              continue;
            }
          }
          const previous = live[other]!;
          if (this.#versionOf(block.offset) >= this.#versionOf(previous)) {
            live[other] = block.offset;
            orphans.push(previous);
          } else {
            orphans.push(block.offset);
          }
          problems.push(`two entries named ${this.#entryKey(block.offset)}`);
          continue;
        }
        if (block.offset === records && records !== 0 && this.#isRecordTable(records)) {
          recordsKept = true; // its magic is never an entry's tag
          continue;
        }
        if (block.offset === expiryArray && expiryArray !== 0) {
          // The expiry order's array (4-aligned offsets: never an entry's tag): rebuilt below.
          expiryKept = true;
          continue;
        }
        orphans.push(block.offset);
      }
      for (const block of orphans) {
        u32[block >>> 2] = 0;
        heap.free(block);
      }
      if (orphans.length > 0) problems.push(`freed ${orphans.length} unreachable block(s)`);
      if (records !== 0 && !recordsKept) {
        u32[ST_RECORDS >>> 2] = 0;
        problems.push("table of record structures lost: values stored as records cannot be read");
      }

      // Write order: by version, which every write raises (ties, only after damage, by position).
      const versions = new Map<number, number>();
      let newest = 0;
      for (const entry of live) {
        const version = this.#versionOf(entry);
        versions.set(entry, version);
        if (version > newest) newest = version;
      }
      live.sort((a, b) => versions.get(a)! - versions.get(b)! || a - b);
      // Damage can leave two entries one version (or one at 0): those get the next free one, so
      // that versions stay unique and grow along the write order.
      let last = 0;
      let renumbered = 0;
      for (const entry of live) {
        let version = versions.get(entry)!;
        if (version <= last) {
          version = last + 1;
          u32[(entry + E_VERSION_LOW) >>> 2] = version >>> 0;
          u32[(entry + E_VERSION_HIGH) >>> 2] = Math.floor(version / TWO_32) |
            nameCheck(this.#hashOf(entry));
          renumbered++;
        }
        last = version;
      }
      if (last > newest) newest = last;
      if (renumbered > 0) problems.push(`${renumbered} entry version(s) repeated: renumbered`);
      if (newest > u32[ST_VERSION >>> 2]! + u32[(ST_VERSION >>> 2) + 1]! * TWO_32) {
        problems.push(`write counter behind the newest version ${newest}: set to it`);
        u32[ST_VERSION >>> 2] = newest >>> 0;
        u32[(ST_VERSION >>> 2) + 1] = Math.floor(newest / TWO_32);
      }
      u32[ST_ORDER_HEAD >>> 2] = 0;
      u32[ST_ORDER_TAIL >>> 2] = 0;
      for (const entry of live) this.#appendToOrder(entry);
      u32[ST_ENTRIES >>> 2] = live.length;

      let count = bucketCount;
      if (!bucketsOk) {
        problems.push("directory lost: rebuilt");
        count = this.#initialBuckets();
        while (count < live.length && count < 1 << 28) count *= 2;
        let fresh = heap.alloc(count * 4);
        while (fresh === NO_ROOM && count > MIN_BUCKETS) {
          count >>>= 1;
          fresh = heap.alloc(count * 4);
        }
        if (fresh === NO_ROOM) {
          // Not even a small directory fits: drop the newest entries until one does.
          while (fresh === NO_ROOM && live.length > 0) {
            const victim = live.pop()!;
            this.#unlinkFromOrder(victim);
            u32[victim >>> 2] = 0;
            heap.free(victim);
            fresh = heap.alloc(count * 4);
          }
          u32[ST_ENTRIES >>> 2] = live.length;
        }
        u32[ST_BUCKETS >>> 2] = fresh;
      }
      this.#dir.rebuild(u32[ST_BUCKETS >>> 2]!, count, live, this.#hashOf);
      if (expiryArray !== 0 && !expiryKept) problems.push("expiry order lost: rebuilt");
      const untracked = this.#expiry.rebuild(
        live.filter((entry) => hasExpiry(u32[entry >>> 2]!)),
        expiryKept,
      );
      if (untracked > 0) {
        problems.push(`${untracked} expiring entries left out of the expiry order`);
      }
    }
    u32[ST_REPAIRS >>> 2]!++;
    u32[ST_JOURNAL_OP >>> 2] = JOURNAL_NONE;
    u32[ST_JOURNAL_NEW >>> 2] = 0;
    u32[ST_JOURNAL_OLD >>> 2] = 0;
    u32[ST_JOURNAL_PHASE >>> 2] = 0;
    this.#settleSeqlock(); // every stripe even, then the epoch
    Atomics.add(u32, ST_SEQ >>> 2, 1); // even again
    return problems;
  }

  /** Whether the used block at `entry` (with `size` payload bytes) holds a well-formed entry. */
  #isValidEntry(entry: number, size: number): boolean {
    const u32 = this.#u32;
    const tag = u32[entry >>> 2]!;
    if ((tag & 0xff) !== ENTRY_TAG) return false;
    const kind = (tag >>> TAG_KIND_SHIFT) & TAG_KIND_MASK;
    const length = tag >>> TAG_NAME_SHIFT;
    const slack = (tag >>> TAG_SLACK_SHIFT) & TAG_SLACK_MASK;
    if (kind === 0 || length === 0 || length > MAX_NAME_BYTES) return false;
    const flags = (tag >>> TAG_FLAGS_SHIFT) & TAG_FLAGS_MASK;
    if ((flags & ~KNOWN_FLAGS) !== 0) return false;
    const trailer = (flags & FLAG_EXPIRES) !== 0 ? EXPIRY_TRAILER_BYTES : 0;
    if (ENTRY_HEADER_BYTES + length + slack + trailer > size) return false;
    const high = u32[(entry + E_VERSION_HIGH) >>> 2]!;
    return (high & ~VERSION_HIGH_MASK) >>> 0 === nameCheck(this.#hashOf(entry));
  }

  /** Whether two valid entries have the same name. */
  #sameName(a: number, b: number): boolean {
    const u32 = this.#u32;
    const u8 = this.#u8;
    const length = u32[a >>> 2]! >>> TAG_NAME_SHIFT;
    if (u32[b >>> 2]! >>> TAG_NAME_SHIFT !== length) return false;
    for (let i = ENTRY_HEADER_BYTES; i < ENTRY_HEADER_BYTES + length; i++) {
      if (u8[a + i] !== u8[b + i]) return false;
    }
    return true;
  }

  #entryKey(entry: number): string {
    const length = this.#u32[entry >>> 2]! >>> TAG_NAME_SHIFT;
    const start = entry + ENTRY_HEADER_BYTES;
    return JSON.stringify(new TextDecoder().decode(this.#u8.subarray(start, start + length)));
  }

  /**
   * Checks the whole store: heap, directory, write order and counts. Takes the shared lock.
   *
   * @returns The problems found; empty when the store is consistent.
   */
  verify(): string[] {
    if (this.#busy) throw this.#reentrant();
    this.#lock.lock(false);
    try {
      return this.#verify();
    } finally {
      this.#lock.unlock();
    }
  }

  #verify(): string[] {
    const u32 = this.#u32;
    const problems = this.#heap.verify().map((p) => `heap: ${p}`);
    if ((Atomics.load(u32, ST_SEQ >>> 2) & 1) !== 0) {
      problems.push("a mutation is marked in progress");
    }
    if ((u32[EPOCH]! & 1) !== 0) problems.push("read seqlock: the epoch is odd");
    for (let s = 0; s < STRIPES; s++) {
      if ((u32[stripeWord(s)]! & 1) !== 0) {
        problems.push(`read seqlock: stripe ${s} is odd`);
      }
    }
    if (u32[ST_MAGIC >>> 2] !== STORE_MAGIC) problems.push("store header: bad magic");
    if (u32[ST_JOURNAL_OP >>> 2] !== JOURNAL_NONE) problems.push("store header: journal not empty");
    const autoclean = this.#f64[ST_AUTOCLEAN >>> 3]!;
    if (!(autoclean > 0 && autoclean <= 1)) {
      problems.push(`store header: watermark ${autoclean} is not in (0, 1]`);
    }
    if (u32[ST_ENTRIES >>> 2]! > this.#maxEntries) {
      problems.push(`store header: ${u32[ST_ENTRIES >>> 2]} entries cannot fit in the heap`);
    }
    const used = new Map<number, number>();
    for (const block of this.#heap.blocks()) if (!block.free) used.set(block.offset, block.size);
    const entries = u32[ST_ENTRIES >>> 2]!;
    const buckets = u32[ST_BUCKETS >>> 2]!;
    const count = u32[ST_BUCKET_COUNT >>> 2]!;
    if (
      !used.has(buckets) || count < MIN_BUCKETS || (count & (count - 1)) !== 0 ||
      used.get(buckets)! < count * 4
    ) {
      problems.push(`directory: bucket array at ${buckets} (${count} buckets) is not a live block`);
      return problems;
    }
    // Every entry reachable from the directory, once, in its right bucket, with a version the
    // write counter has given.
    const counter = u32[ST_VERSION >>> 2]! + u32[(ST_VERSION >>> 2) + 1]! * TWO_32;
    const reached = new Set<number>();
    for (let b = 0; b < count && problems.length < 100; b++) {
      let entry = u32[(buckets >>> 2) + b]!;
      for (let steps = 0; entry !== 0; steps++) {
        if (steps > entries || reached.has(entry)) {
          problems.push(`directory: bucket ${b} has a cycle or too many entries`);
          break;
        }
        const size = used.get(entry);
        if (size === undefined || !this.#isValidEntry(entry, size)) {
          problems.push(`directory: bucket ${b} links to ${entry}, not a valid entry`);
          break;
        }
        if ((this.#hashOf(entry) & (count - 1)) !== b) {
          problems.push(`directory: entry ${entry} is in bucket ${b}, not its own`);
        }
        const version = this.#versionOf(entry);
        if (version > counter || version === 0) {
          problems.push(`entry ${entry}: version ${version} is not in 1..${counter}`);
        }
        reached.add(entry);
        entry = u32[(entry + E_HASH_NEXT) >>> 2]!;
      }
    }
    if (reached.size !== entries) {
      problems.push(`directory: ${reached.size} entries reachable, header counts ${entries}`);
    }
    // Write order: a doubly linked list over exactly the same entries, oldest first, so their
    // versions grow. (Write times are not checked: the wall clock may step back.)
    let entry = u32[ST_ORDER_HEAD >>> 2]!;
    let prev = 0;
    let listed = 0;
    let lastVersion = 0;
    while (entry !== 0) {
      if (listed >= reached.size || !reached.has(entry)) {
        problems.push(`write order: ${entry} is not a live entry, or the list is too long`);
        break;
      }
      if (u32[(entry + E_ORDER_PREV) >>> 2] !== prev) {
        problems.push(`write order: bad back link at ${entry}`);
      }
      const version = this.#versionOf(entry);
      if (version <= lastVersion) {
        problems.push(`write order: ${entry} (version ${version}) after version ${lastVersion}`);
      }
      lastVersion = version;
      prev = entry;
      listed++;
      entry = u32[(entry + E_ORDER_NEXT) >>> 2]!;
    }
    if (prev !== u32[ST_ORDER_TAIL >>> 2]) problems.push("write order: tail is not the last entry");
    if (listed !== entries && problems.length === 0) {
      problems.push(`write order: ${listed} entries listed, header counts ${entries}`);
    }
    // The expiry order: a heap over exactly the entries with an expiry that it could take.
    problems.push(...this.#expiry.verify((offset) => reached.has(offset), used));
    let tracked = 0;
    for (const entry of reached) {
      if (!hasExpiry(u32[entry >>> 2]!)) continue;
      const index = u32[trailerWord(u32, entry) + 2]!;
      if (index !== EXPIRY_UNTRACKED) tracked++;
    }
    if (tracked !== this.#expiry.count) {
      problems.push(
        `expiry order: ${this.#expiry.count} entries, ${tracked} entries record a slot`,
      );
    }
    const records = u32[ST_RECORDS >>> 2]!;
    if (records !== 0 && (!used.has(records) || !this.#isRecordTable(records))) {
      problems.push(`records: the table at ${records} is not a live, well-formed block`);
    }
    // Every used block is the directory, the expiry order, the table of record structures or a
    // reachable entry: nothing leaks.
    const leaked = used.size - 1 - (u32[ST_EXPIRY_HEAP >>> 2] !== 0 ? 1 : 0) -
      (records !== 0 ? 1 : 0) - reached.size;
    if (leaked > 0) problems.push(`heap: ${leaked} used block(s) belong to no entry`);
    return problems;
  }

  // -------------------------------------------------------------------------------------------
  // The table of record structures (allocator/records.ts)

  /**
   * The table of record structures, copied out under the lock; `undefined` while the store has
   * none. Taken rarely: when a process first reads or writes records, and when it meets a
   * structure it does not know yet.
   */
  recordTable(): RecordTable | undefined {
    // Inside update's callback this process holds the lock already: the table cannot change.
    if (this.#busy) return this.#copyRecordTable();
    this.#lockExclusive();
    try {
      return this.#copyRecordTable();
    } finally {
      this.#unlock();
    }
  }

  #copyRecordTable(): RecordTable | undefined {
    const u32 = this.#u32;
    const at = u32[ST_RECORDS >>> 2]!;
    if (at === 0) return undefined;
    const length = u32[(at + 12) >>> 2]!;
    const start = at + RECORDS_HEADER_BYTES;
    return {
      lineage: u32[(at + 4) >>> 2]!,
      version: u32[(at + 8) >>> 2]!,
      bytes: this.#u8.slice(start, start + length),
    };
  }

  /**
   * Replaces the table of record structures with `bytes`, if it is still the one the caller
   * knows: of `lineage` at `version` (`lineage` 0: there is none). The new block is written
   * whole, then linked, then the old one freed, so a crash at any point leaves one table or the
   * other (repair frees the block left over). Room for it is made as for a value, by evicting
   * the oldest entries. The new table's version is `version + 1` (1 for a new table).
   *
   * @returns The table's lineage (a new random one when there was no table); 0 when the table
   * changed since the caller read it (read it again); -1 when there is no room for it; -2 when
   * called from inside {@linkcode Store.update}'s callback, which holds the lock (save it
   * after the update).
   */
  saveRecordTable(lineage: number, version: number, bytes: Uint8Array): number {
    if (this.#busy) return -2;
    this.#lockExclusive();
    try {
      const u32 = this.#u32;
      const old = u32[ST_RECORDS >>> 2]!;
      const current = old === 0 ? 0 : u32[(old + 4) >>> 2]!;
      if (current !== lineage || (old !== 0 && u32[(old + 8) >>> 2] !== version)) return 0;
      const need = RECORDS_HEADER_BYTES + bytes.length;
      if (need > this.maxEntryBytes) return -1;
      return this.#mutate(() => {
        this.#keep = 0;
        const block = this.#allocRoom(need, this.#now());
        if (block === NO_ROOM) return -1;
        const next = current !== 0 ? current : (Math.random() * 0xffff_ffff + 1) >>> 0 || 1;
        this.#writeRecordTable(block, next, old === 0 ? 1 : version + 1, bytes);
        u32[ST_RECORDS >>> 2] = block; // the commit
        if (old !== 0) this.#heap.free(old);
        return next;
      });
    } finally {
      this.#unlock();
    }
  }

  #writeRecordTable(block: number, lineage: number, version: number, bytes: Uint8Array): void {
    const u32 = this.#u32;
    u32[(block + 4) >>> 2] = lineage;
    u32[(block + 8) >>> 2] = version;
    u32[(block + 12) >>> 2] = bytes.length;
    this.#u8.set(bytes, block + RECORDS_HEADER_BYTES);
    u32[block >>> 2] = RECORDS_MAGIC;
  }

  /** Whether `at` is the payload of a heap block holding a well-formed table. */
  #isRecordTable(at: number): boolean {
    if ((at & 3) !== 0 || at < this.#heap.offset + 4 || at + RECORDS_HEADER_BYTES > this.#heapEnd) {
      return false;
    }
    const u32 = this.#u32;
    const usable = (u32[(at >>> 2) - 1]! >>> 2) * 4 - 4; // the block's payload, as #write reads it
    return u32[at >>> 2] === RECORDS_MAGIC && u32[(at + 4) >>> 2] !== 0 &&
      RECORDS_HEADER_BYTES + u32[(at + 12) >>> 2]! <= usable && at + usable <= this.#heapEnd;
  }

  /** The table's block copied out before the heap is laid out afresh (purge); null when none. */
  #takeRecordTable(): Uint8Array | null {
    const at = this.#u32[ST_RECORDS >>> 2]!;
    this.#u32[ST_RECORDS >>> 2] = 0;
    if (at === 0 || !this.#isRecordTable(at)) return null;
    return this.#u8.slice(at, at + RECORDS_HEADER_BYTES + this.#u32[(at + 12) >>> 2]!);
  }

  /**
   * Puts back a table {@linkcode Store.#takeRecordTable} copied out, on the heap laid out
   * afresh. Without room (a store too small for its table and one value), the table is lost:
   * its values cannot be read, and the next one made has another lineage.
   */
  #putRecordTable(table: Uint8Array | null): void {
    if (table === null) return;
    const block = this.#heap.alloc(table.length);
    if (block === NO_ROOM) return;
    this.#u8.set(table, block);
    this.#u32[ST_RECORDS >>> 2] = block;
  }

  // -------------------------------------------------------------------------------------------
  // Statistics

  /** Adds this process's read counts to the shared counters. */
  flushCounters(): void {
    if (this.#hits > 0) Atomics.add(this.#u64, ST_HITS >>> 3, BigInt(this.#hits));
    if (this.#misses > 0) Atomics.add(this.#u64, ST_MISSES >>> 3, BigInt(this.#misses));
    this.#hits = 0;
    this.#misses = 0;
  }

  /**
   * The heap's blocks summed into `cells` cells, under the lock (a walk of every block: about
   * 10 ns a block, which holds up writers meanwhile).
   */
  map(cells: number): StoreMap {
    if (this.#busy) throw this.#reentrant();
    this.#lock.lock(false);
    try {
      return mapHeap(this.#heap, this.#u8, cells);
    } finally {
      this.#lock.unlock();
    }
  }

  /** Figures for the whole store, shared by all processes. */
  stats(): StoreStats {
    this.flushCounters();
    if (this.#busy) throw this.#reentrant();
    this.#lock.lock(false);
    try {
      const heap = this.#heap.stats();
      const u32 = this.#u32;
      const counter = (at: number) => Number(Atomics.load(this.#u64, at >>> 3));
      return {
        entries: u32[ST_ENTRIES >>> 2]!,
        bytesUsed: this.#size - heap.free,
        bytesFree: heap.free,
        capacity: this.#size,
        largestFree: Math.max(0, heap.largestFree - ENTRY_HEADER_BYTES),
        watermark: this.#watermarkBytes(),
        autoclean: this.autoclean,
        writes: counter(ST_WRITES),
        hits: counter(ST_HITS),
        misses: counter(ST_MISSES),
        evictions: counter(ST_EVICTIONS),
        deletes: counter(ST_DELETES),
        repairs: u32[ST_REPAIRS >>> 2]!,
        expired: counter(ST_EXPIRED),
      };
    } finally {
      this.#lock.unlock();
    }
  }
}

const RETRY: unique symbol = Symbol("retry");
