/**
 * The memalloc store: named values in a shared-memory segment that every process on the
 * machine can open, from Deno, Bun and Node.js.
 *
 * @module
 */
import {
  decodeValue,
  encodeValue,
  KIND_BYTES,
  KIND_JSON,
  KIND_NUMBER,
  KIND_STRING,
} from "./allocator/codec.ts";
import {
  JSON_LAYOUT_VERSION,
  LAYOUT_VERSION,
  MAGIC,
  OLDEST_LAYOUT_VERSION,
  RECORDS_LAYOUT_VERSION,
  SEG_MAGIC,
  SEG_SIZE,
  SEG_VERSION,
  SEGMENT_HEADER_BYTES,
} from "./allocator/layout.ts";
import { type EntryInfo, type ScannedEntry, Store, type StoreStats } from "./allocator/store.ts";
import { Records } from "./allocator/records.ts";
import type { StoreMap } from "./allocator/map.ts";
import { MemallocError } from "./errors.ts";
import {
  DecodeCache,
  type DecodeCacheLimits,
  deepFreeze,
  DEFAULT_DECODE_CACHE_BYTES,
  DEFAULT_DECODE_CACHE_ENTRIES,
} from "./frozen.ts";
import { describe, Segment } from "./ffi/segment.ts";
import { nativeAddonsAllowed, runtime } from "./ffi/runtime.ts";
import {
  checkFinite,
  checkListOptions,
  checkOptionKeys,
  checkOptions,
  checkTtl,
  checkVersionOption,
  checkWatchSignal,
  DEFAULT_STORE,
  DELETE_OPTION_KEYS,
  INCREMENT_OPTION_KEYS,
  type MemallocAbortSignal,
  type MemallocDeleteOptions,
  type MemallocIncrementOptions,
  type MemallocListOptions,
  type MemallocOptions,
  type MemallocReadOptions,
  type MemallocTtlOptions,
  type MemallocWatchOptions,
  type MemallocWriteOptions,
  pause,
  READ_OPTION_KEYS,
  ttlOption,
  WRITE_OPTION_KEYS,
} from "./options.ts";
import {
  Cbor,
  decodeUtf8,
  lastJsonReadKind,
  readJsonText,
  readValue,
  toEntryInfo,
} from "./_values.ts";

// cbor-x's native string extractor makes CBOR decodes 1.5-2x faster (a 1 KiB object: 4.6 ->
// 3.0 us on Deno, 8.3 -> 3.8 us on Bun). Its loader reads environment variables and files, so
// it is loaded only where that needs no permission (Bun; Deno with env, read and sys granted).
// It installs itself into the decoder that allocator/codec.ts uses; without it, the same
// decoder runs in plain JavaScript.
if (nativeAddonsAllowed) await import("cbor-x");

/** Figures for a whole store, shared by every process that has it open. */
export interface MemallocStats extends StoreStats {
  /** The store name. */
  name: string;
  /** When the store's segment was created (ms since the epoch). */
  createdAt: number;
  /** The store's lock kind: a robust process-shared mutex, or `flock`. */
  lockKind: "mutex" | "flock";
}

/** What is known of one entry without reading its value. */
export interface MemallocEntryInfo {
  /**
   * How the value is stored: raw text, raw bytes, a float64, JSON text or CBOR records (plain
   * objects and arrays; see {@linkcode MemallocOptions.objects}), or CBOR for anything else.
   */
  kind: "string" | "bytes" | "number" | "json" | "cbor" | "records";
  /** Stored size of the value in bytes. */
  size: number;
  /** When the name was first written (ms since the epoch); kept across overwrites. */
  created: number;
  /** When it was last written (ms since the epoch). */
  written: number;
  /**
   * The value's version: the store's write counter when it was written, shared by every
   * process. Any later write of any name gets a larger one, so a changed value (even one
   * deleted and written again) never shows an earlier or equal version.
   */
  version: number;
  /** When the entry expires (ms since the epoch), or `null` when it never does. */
  expires: number | null;
}

/**
 * Whether reads load the seqlock with plain loads between fences on a private word, instead of
 * `Atomics.load` on the shared word (see the store's `plainSeqLoads`). JavaScriptCore (Bun)
 * compiles `Atomics.load` to a locked read-modify-write on x86, which makes two reading
 * processes bounce the seqlock's cache line; V8 compiles it to a plain load already.
 */
const PLAIN_SEQ_LOADS = runtime === "bun" &&
  (globalThis as { process?: { arch?: string } }).process?.arch === "x64";

/** One entry as {@linkcode Memalloc.list} yields it: its name and its metadata. */
export interface MemallocListedEntry extends MemallocEntryInfo {
  /** The entry's name. */
  name: string;
}

/** One name's state, as {@linkcode Memalloc.watch} yields it. */
export interface MemallocWatchEntry<T = unknown> {
  /** The name. */
  name: string;
  /** Its value, or `undefined` when it has none. */
  value: T | undefined;
  /** The value's version (see {@linkcode MemallocEntryInfo.version}), or `null` when absent. */
  version: number | null;
}

/** How often a watch looks at the store's change count, in ms. */
const WATCH_POLL_MS = 10;

/** The reader of `has`: an entry is there. */
function present(): boolean {
  return true;
}

/** What the reader of a frozen read returns when the cached value is still the entry's. */
const CACHED: unique symbol = Symbol("cached");

/**
 * A named store of values in shared memory. Every process that opens the same name, from Deno
 * or from Bun, sees the same entries; they outlive the processes that wrote them, until
 * {@linkcode Memalloc.purge}, {@linkcode Memalloc.unlink} or a reboot.
 *
 * Values: strings and `Uint8Array`s are stored as they are; any other value that cbor-x can
 * encode (numbers, booleans, null, arrays, plain objects, Date, Map, Set, bigint, typed arrays)
 * is stored as CBOR and comes back equal.
 *
 * Reads take no lock (a seqlock, striped by name, makes them retry while a writer changes a name
 * of their stripe); writes take the
 * store's lock, a robust process-shared mutex (or `flock`) that the kernel hands on when its
 * holder dies, and a writer killed half-way is repaired by the next process to take the lock.
 *
 * @example Open a store, write, read, close
 * ```ts
 * import { Memalloc } from "./memalloc.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * using store = Memalloc.open(name, { maxMemory: 1024 * 1024 });
 * store.write("user:1", { name: "Ada", visits: 3 });
 * console.log(store.read("user:1")); // { name: "Ada", visits: 3 }
 * console.log(store.delete("user:1")); // true
 * Memalloc.unlink(name);
 * ```
 */
export class Memalloc {
  /** The store name. */
  readonly name: string;
  /** The segment size in bytes: the store's real size, whatever was asked. */
  readonly maxMemory: number;
  /** The store's eviction watermark, a fraction of `maxMemory`. */
  readonly autoclean: number;
  #segment: Segment;
  #store: Store | null;
  /** Frozen values by name, made at the first frozen read. */
  #frozen: DecodeCache | null = null;
  #cacheLimits: Required<DecodeCacheLimits>;
  /** Whether values may be stored as JSON text: the store's layout has that kind. */
  #json: boolean;
  /** The records codec of this store (layout 6 on), for reading; and for writing, unless `objects: "json"`. */
  #records: Records | undefined;
  #writeRecords: Records | undefined;
  /** The cached version the frozen reader looks for, and the version it found. */
  #wanted = -1;
  #found = -1;

  /** The default time to live of this handle's writes, in ms; 0 for none. */
  readonly ttl: number;

  private constructor(
    segment: Segment,
    store: Store,
    ttl: number,
    cacheLimits: Required<DecodeCacheLimits> | undefined,
    writeRecords: boolean,
  ) {
    this.ttl = ttl;
    this.#cacheLimits = cacheLimits ??
      { entries: DEFAULT_DECODE_CACHE_ENTRIES, bytes: DEFAULT_DECODE_CACHE_BYTES };
    this.name = segment.name;
    this.#segment = segment;
    this.#store = store;
    this.#json = segment.layoutVersion >= JSON_LAYOUT_VERSION;
    if (segment.layoutVersion >= RECORDS_LAYOUT_VERSION) {
      this.#records = new Records(store);
      if (writeRecords) this.#writeRecords = this.#records;
    }
    this.maxMemory = segment.size;
    this.autoclean = store.autoclean;
  }

  /**
   * Opens the store called `name`, creating it if it does not exist. A store that exists keeps
   * its size and watermark ({@linkcode Memalloc.maxMemory}, {@linkcode Memalloc.autoclean}
   * report them). Each open store has its own descriptor and lock: open one per Worker.
   *
   * @param name Store name: 1 to 246 UTF-8 bytes without `/` (`/dev/shm/memalloc.<name>`).
   * @param options `maxMemory`, `autoclean` and `mode` for a store this call creates; `mode`
   * and `trust` for one that exists.
   * @returns The open store; close it with {@linkcode Memalloc.close} or `using`.
   * @throws {TypeError} For a bad name or option type, or an unknown option.
   * @throws {RangeError} For a name too long or an option out of range.
   * @throws {MemallocError} When the segment cannot be opened (`EACCES`, `ENOSPC`, ...), is not
   * a memalloc segment (`ERR_MEMALLOC_FORMAT`), has another layout (`ERR_MEMALLOC_VERSION`), or
   * is owned or writable by someone this call does not trust (`ERR_MEMALLOC_UNTRUSTED`); nothing
   * in the segment is read or written then.
   *
   * @example Settings of an existing store win
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using first = Memalloc.open(name, { maxMemory: 1 << 20, autoclean: 0.5 });
   * using second = Memalloc.open(name, { maxMemory: 8 << 20 });
   * console.log(second.maxMemory, second.autoclean); // 1048576 0.5
   * Memalloc.unlink(name);
   * ```
   */
  static open(name: string = DEFAULT_STORE, options?: MemallocOptions): Memalloc {
    const { maxMemory, autoclean, ttl = 0, decodeCache, objects, ...rest } = checkOptions(options);
    const segment = Segment.open(name, { size: maxMemory, ...rest });
    try {
      const store = Store.open(segment.buffer, {
        lock: { lock: (exclusive) => segment.lock(exclusive), unlock: () => segment.unlock() },
        autoclean,
        label: segment.name,
        plainSeqLoads: PLAIN_SEQ_LOADS,
      });
      return new Memalloc(segment, store, ttl, decodeCache, objects !== "json");
    } catch (error) {
      segment.close();
      throw error;
    }
  }

  /**
   * Removes a store's segment. Processes that have it open keep using it until they close it;
   * the next open creates a new, empty store.
   *
   * @param name The store name.
   * @returns Whether there was such a store.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} When the segment cannot be removed (`EACCES`).
   *
   * @example Remove a store
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * Memalloc.open(name, { maxMemory: 1 << 20 }).close();
   * console.log(Memalloc.unlink(name), Memalloc.unlink(name)); // true false
   * ```
   */
  static unlink(name: string): boolean {
    return Segment.unlink(name);
  }

  /**
   * Whether a store exists.
   *
   * @param name The store name.
   * @returns `true` when its segment exists.
   * @throws {TypeError} For a bad name.
   *
   * @example Check for a store
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * console.log(Memalloc.exists(`doc-${crypto.randomUUID()}`)); // false
   * ```
   */
  static exists(name: string): boolean {
    return Segment.exists(name);
  }

  #open(): Store {
    const store = this.#store;
    if (store === null) {
      throw new MemallocError(`Store "${this.name}" is closed`, {
        code: "ERR_MEMALLOC_CLOSED",
        store: this.name,
      });
    }
    return store;
  }

  /**
   * Writes a value under a name, replacing any earlier value in one step: readers in other
   * processes see the old value or the new one, never a mix. When the store is full, entries
   * that have expired go first; then the oldest-written entries are evicted until usage is at
   * the watermark and the value fits.
   *
   * With a `ttl` (or the handle's default, {@linkcode MemallocOptions.ttl}) the entry is gone
   * from that instant for every reader in every process: `read` gives `undefined`, `has`
   * `false`, iteration skips it, `add` may take the name. A read of an entry that has a TTL
   * costs one clock reading more (`Date.now()`: 40 to 80 ns on a virtual machine).
   *
   * @param name Entry name: a non-empty string of at most 250 UTF-8 bytes.
   * @param value A string, a `Uint8Array`, a number, or any value cbor-x can encode.
   * @param options `ifVersion`: write only over that version of the entry (`null`: only when
   * there is none, or it has expired); `ttl`: time to live in ms (0: none); see
   * {@linkcode MemallocWriteOptions}.
   * @returns Whether the value was written: always `true` without `ifVersion`.
   * @throws {TypeError} For a bad name, or a value that cannot be stored (a function, a
   * symbol, `undefined`, ...); nothing is written.
   * @throws {RangeError} For a name too long, or a value too large for the store even when
   * empty; nothing is written or evicted.
   * @throws {MemallocError} When the store is closed or its lock fails; `ERR_MEMALLOC_CORRUPT`
   * when the segment is damaged and still is after the repair this call runs.
   *
   * @example Write and overwrite
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("greeting", "Foobar");
   * store.write("greeting", store.read<string>("greeting") + "123");
   * console.log(store.read("greeting")); // Foobar123
   * Memalloc.unlink(name);
   * ```
   *
   * @example A session that expires
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("session:42", { user: "ada" }, { ttl: 20 });
   * console.log(store.has("session:42")); // true
   * await new Promise((resolve) => setTimeout(resolve, 30));
   * console.log(store.read("session:42")); // undefined
   * Memalloc.unlink(name);
   * ```
   */
  write(name: string, value: unknown, options?: MemallocWriteOptions): boolean {
    const store = this.#open();
    let ifVersion: number | null | undefined;
    let ttl = this.ttl;
    if (options !== undefined) {
      ifVersion = checkVersionOption(options, "write", WRITE_OPTION_KEYS, true);
      if (options.ttl !== undefined) ttl = checkTtl(options.ttl, "write");
    }
    // The segment's size bounds the walk over the value: no value larger than it can be stored.
    const { kind, bytes } = encodeValue(value, this.maxMemory, this.#json, this.#writeRecords);
    return store.write(name, kind, bytes, ifVersion, ttl);
  }

  /**
   * Writes a value only when the name has none (or its entry has expired): the first of any
   * number of processes that add one name at once wins, the others get `false`.
   *
   * @param name Entry name.
   * @param value The value, as for {@linkcode Memalloc.write}.
   * @param options `ttl`: time to live in ms of the value written (default: the handle's).
   * @returns Whether the value was written.
   * @throws {TypeError} For a bad name or a value that cannot be stored.
   * @throws {RangeError} As {@linkcode Memalloc.write} does.
   * @throws {MemallocError} When the store is closed or its lock fails.
   *
   * @example Take a job once
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * console.log(store.add("job:7", "worker-1"), store.add("job:7", "worker-2")); // true false
   * console.log(store.read("job:7")); // worker-1
   * Memalloc.unlink(name);
   * ```
   */
  add(name: string, value: unknown, options?: MemallocTtlOptions): boolean {
    const store = this.#open();
    const ttl = ttlOption(options, "add", this.ttl);
    const { kind, bytes } = encodeValue(value, this.maxMemory, this.#json, this.#writeRecords);
    return store.write(name, kind, bytes, null, ttl);
  }

  /**
   * Adds `delta` to the number stored under a name, atomically across every process of every
   * runtime: concurrent increments all count. A missing name starts at `initial`. Numbers are
   * float64, so integers stay exact up to 2^53. Each increment is a write: a new version, and
   * the entry becomes the newest in write order.
   *
   * @param name Entry name.
   * @param delta What to add (default 1; negative to subtract), a finite number.
   * @param options `initial`: the value a missing (or expired) name starts from (default 0);
   * `ttl`: the time to live of an entry this call creates (a live one keeps its expiry, so a
   * counter with a TTL counts in a fixed window: a rate limiter).
   * @returns The new value.
   * @throws {TypeError} For a bad name, a `delta` or `initial` that is not a number, or an entry
   * that holds something else than a number (it is left unchanged).
   * @throws {RangeError} For a `delta` or `initial` that is not finite, or a result that is not.
   * @throws {MemallocError} When the store is closed or its lock fails.
   *
   * @example Count page views from many processes
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.increment("views");
   * console.log(store.increment("views", 10)); // 11
   * console.log(store.increment("stock", -1, { initial: 5 })); // 4
   * Memalloc.unlink(name);
   * ```
   */
  increment(name: string, delta: number = 1, options?: MemallocIncrementOptions): number {
    const store = this.#open();
    checkFinite(delta, "delta", name);
    let initial = 0;
    let ttl = this.ttl;
    if (options !== undefined) {
      checkOptionKeys(options, "increment", INCREMENT_OPTION_KEYS);
      if (options.initial !== undefined) initial = checkFinite(options.initial, "initial", name);
      if (options.ttl !== undefined) ttl = checkTtl(options.ttl, "increment");
    }
    return store.increment(name, delta, initial, KIND_NUMBER, ttl);
  }

  /**
   * Reads, changes and writes one entry as one step: `change` gets the current value
   * (`undefined` when there is none) and returns the new one (`undefined` deletes the entry).
   * It runs while this process holds the store's lock, so no other process's write comes in
   * between, and none is lost; but every writer of the store, in every process, waits for it:
   * keep it short and synchronous. A `change` that throws changes nothing, and its error
   * reaches the caller. A call on the same store from inside `change` throws
   * `ERR_MEMALLOC_REENTRANT`.
   *
   * @param name Entry name.
   * @param change Computes the new value from the current one.
   * @param options `ttl`: time to live in ms of the value written (default: the handle's).
   * @returns The value now stored (`undefined` when there is none).
   * @throws {TypeError} For a bad name, a `change` that is not a function, or a result that
   * cannot be stored; whatever `change` throws.
   * @throws {RangeError} For a result too large for the store.
   * @throws {MemallocError} `ERR_MEMALLOC_REENTRANT` for a call on the store from inside
   * `change`; when the store is closed or its lock fails.
   *
   * @example Append to a list that several processes share
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.update<string[]>("log", (list = []) => [...list, "started"]);
   * console.log(store.update<string[]>("log", (list = []) => [...list, "ready"])); // [ "started", "ready" ]
   * Memalloc.unlink(name);
   * ```
   */
  update<T = unknown>(
    name: string,
    change: (current: T | undefined) => T | undefined,
    options?: MemallocTtlOptions,
  ): T | undefined {
    const store = this.#open();
    if (typeof change !== "function") {
      throw new TypeError(
        `Cannot update "${String(name)}": change must be a function, got ${typeof change}`,
      );
    }
    const ttl = ttlOption(options, "update", this.ttl);
    let result: T | undefined;
    store.update(name, (current) => {
      const old = current === undefined
        ? undefined
        : this.#decode<T>(name, current.kind, current.bytes);
      result = change(old);
      if (result === undefined) return current === undefined ? undefined : null;
      return { ...encodeValue(result, this.maxMemory, this.#json, this.#writeRecords), ttl };
    });
    // A new shape cannot join the table while the lock is held: this value went as JSON text,
    // and the table learns the shape now, for the next one.
    if (result !== undefined) this.#writeRecords?.learnDeferred(result);
    return result;
  }

  /**
   * The names in the store, oldest-written first, optionally only those that start with
   * `prefix`, at most `limit` of them. The store's lock is held for a few hundred entries at a
   * time, never for the whole walk, so writers in other processes go on meanwhile: a name that
   * is not written during the walk is listed once, a name written during it once (at its
   * newest place), and a name deleted or evicted during it may be missing.
   *
   * @param options `prefix`: only names that start with it; `limit`: at most this many.
   * @returns The names.
   * @throws {TypeError} For options that are not an object, a prefix that is not a string or
   * holds a lone surrogate, or an unknown option.
   * @throws {RangeError} For a limit that is not a whole number from 0 up.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_REENTRANT` inside an
   * `update` callback.
   *
   * @example List the sessions
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("session:1", "a");
   * store.write("user:1", "b");
   * store.write("session:2", "c");
   * console.log(store.keys({ prefix: "session:" })); // [ "session:1", "session:2" ]
   * Memalloc.unlink(name);
   * ```
   */
  keys(options?: MemallocListOptions): string[] {
    const store = this.#open();
    const { prefix, limit } = checkListOptions(options, "keys");
    const names = new Set<string>();
    for (const entry of store.scan(prefix, false)) {
      if (names.size >= limit) break;
      const key = decodeUtf8(entry.name);
      names.delete(key); // written again during the walk: listed at its newest place
      names.add(key);
    }
    return [...names];
  }

  /**
   * The names and values in the store, oldest-written first, optionally only those whose name
   * starts with `prefix`, at most `limit` of them. Values are read a few hundred entries (or
   * about 1 MiB) at a time under the store's lock, and decoded as the iteration reaches them,
   * so memory stays bounded however large the store is. Other processes may write between two
   * chunks: an entry that is not written during the iteration comes once; one written during it
   * may come again later with its new value; one deleted or evicted may not come at all.
   *
   * @param options `prefix`: only names that start with it; `limit`: at most this many.
   * @returns An iterator of `[name, value]` pairs.
   * @throws {TypeError} As {@linkcode Memalloc.keys} does.
   * @throws {RangeError} As {@linkcode Memalloc.keys} does.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_CORRUPT` for a value that
   * cannot be decoded.
   *
   * @example Sum the counters
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.increment("hits:a", 2);
   * store.increment("hits:b", 3);
   * let total = 0;
   * for (const [, hits] of store.entries<number>({ prefix: "hits:" })) total += hits;
   * console.log(total); // 5
   * Memalloc.unlink(name);
   * ```
   */
  entries<T = unknown>(options?: MemallocListOptions): IterableIterator<[string, T]> {
    const store = this.#open();
    const { prefix, limit } = checkListOptions(options, "entries");
    return this.#entries<T>(store.scan(prefix, true), limit);
  }

  *#entries<T>(
    scan: Iterable<ScannedEntry>,
    limit: number,
  ): Generator<[string, T], void, undefined> {
    let count = 0;
    for (const entry of scan) {
      if (count++ >= limit) return;
      const key = decodeUtf8(entry.name);
      yield [key, this.#decode<T>(key, entry.kind, entry.value!)];
    }
  }

  /**
   * The names in the store with what {@linkcode Memalloc.info} tells of each (kind, size,
   * times, version), without their values: oldest-written first, optionally only those whose
   * name starts with `prefix`, at most `limit`. Read in chunks under the lock as
   * {@linkcode Memalloc.entries} is, with the same guarantees under concurrent writers. What
   * tools that list a store (the dashboard, `memalloc keys --json`) use.
   *
   * @param options `prefix`: only names that start with it; `limit`: at most this many.
   * @returns An iterator of entries' metadata, each with its `name`.
   * @throws {TypeError} As {@linkcode Memalloc.keys} does.
   * @throws {RangeError} As {@linkcode Memalloc.keys} does.
   * @throws {MemallocError} When the store is closed.
   *
   * @example The largest session
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("session:1", "a".repeat(10));
   * store.write("session:2", "b".repeat(99));
   * let largest = { name: "", size: -1 };
   * for (const entry of store.list({ prefix: "session:" })) {
   *   if (entry.size > largest.size) largest = entry;
   * }
   * console.log(largest.name); // session:2
   * Memalloc.unlink(name);
   * ```
   */
  list(options?: MemallocListOptions): IterableIterator<MemallocListedEntry> {
    const store = this.#open();
    const { prefix, limit } = checkListOptions(options, "list");
    return this.#list(store.scan(prefix, false), limit);
  }

  *#list(
    scan: Iterable<ScannedEntry>,
    limit: number,
  ): Generator<MemallocListedEntry, void, undefined> {
    let count = 0;
    for (const entry of scan) {
      if (count++ >= limit) return;
      yield { name: decodeUtf8(entry.name), ...toEntryInfo(entry) };
    }
  }

  /**
   * Watches names for changes, like Deno KV's `watch`: the first item is the names' current
   * state; then a new item comes each time any of them is written, deleted, evicted (or the
   * store purged), by any process of any runtime, within about 10 ms (changes in between are
   * coalesced: each item is the state when it is read). While nothing changes the store costs
   * a look at a few words every 10 ms: no lock, no busy loop. It ends on `break` (or `return`),
   * when `signal` aborts, and when the store is closed; while it runs, its timer keeps the
   * process alive.
   *
   * @param names The names to watch.
   * @param options `signal`: an `AbortSignal` that ends the watch.
   * @returns An async iterator of the names' states, in the order of `names`.
   * @throws {TypeError} For names that are not an array of valid names, or a bad signal (on
   * the first `next()`).
   * @throws {MemallocError} When the store is closed before the watch starts.
   *
   * @example Wait for a value another process writes
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * setTimeout(() => store.write("ready", "yes"), 20);
   * for await (const [ready] of store.watch(["ready"])) {
   *   console.log(ready!.value); // undefined, then yes
   *   if (ready!.value !== undefined) break;
   * }
   * Memalloc.unlink(name);
   * ```
   */
  watch<T = unknown>(
    names: readonly string[],
    options?: MemallocWatchOptions,
  ): AsyncIterableIterator<MemallocWatchEntry<T>[]> {
    const store = this.#open();
    if (!Array.isArray(names)) {
      throw new TypeError(`watch() takes an array of names, got ${describe(names)}`);
    }
    const list = [...names];
    for (const name of list) store.read(name, present); // validates every name now
    const signal = checkWatchSignal(options);
    return this.#watch<T>(store, list, signal);
  }

  async *#watch<T>(
    store: Store,
    names: string[],
    signal: MemallocAbortSignal | undefined,
  ): AsyncGenerator<MemallocWatchEntry<T>[], void, undefined> {
    let count = store.changeCount();
    const expiry = { next: Infinity };
    let state = this.#states<T>(store, names, expiry);
    yield state;
    for (;;) {
      await pause(WATCH_POLL_MS, signal);
      if (signal?.aborted || this.#store !== store) return;
      const now = store.changeCount();
      // Nothing written, deleted or evicted: only an expiry can have changed the state.
      if (now === count && Date.now() < expiry.next) continue;
      count = now;
      const next = this.#states<T>(store, names, expiry);
      if (next.some((entry, i) => entry.version !== state[i]!.version)) {
        state = next;
        yield state;
      }
    }
  }

  /**
   * The names' values and versions, each read as one; `expiry.next` becomes the soonest expiry
   * among them (`Infinity`: none expires).
   */
  #states<T>(
    store: Store,
    names: string[],
    expiry: { next: number },
  ): MemallocWatchEntry<T>[] {
    let nextExpiry = Infinity;
    const states = names.map((name): MemallocWatchEntry<T> => {
      const found = store.read(name, (kind, bytes, start, end, entry) => ({
        value: readValue(kind, bytes, start, end),
        version: store.versionAt(entry),
        expires: store.expiresAt(entry),
      }));
      if (found === undefined) return { name, value: undefined, version: null };
      if (found.expires > 0 && found.expires < nextExpiry) nextExpiry = found.expires;
      const value = found.value instanceof Cbor
        ? this.#decode<T>(name, found.value.kind, found.value.bytes)
        : found.value as T;
      return { name, value, version: found.version };
    });
    expiry.next = nextExpiry;
    return states;
  }

  /**
   * Whether the store holds a value under a name (without reading it).
   *
   * @param name Entry name.
   * @returns `true` when there is one.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Check before a costly computation
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("report", "ready");
   * console.log(store.has("report"), store.has("other")); // true false
   * Memalloc.unlink(name);
   * ```
   */
  has(name: string): boolean {
    return this.#open().read(name, present) === true;
  }

  /**
   * A number that moves whenever any process writes, deletes, evicts or reaps an entry, or
   * purges or repairs the store: what `watch` polls. A few plain loads, no lock, nothing written,
   * so it suits a hot path that caches a conclusion drawn from the store ("this flag is set")
   * and draws it again only once the number moved. It wraps around at 2^32 and says nothing of
   * which entry changed. An entry that expires moves it only once it is reaped: a reader of
   * entries with a TTL compares their expiry time with the clock as well.
   *
   * @returns The store's change count, an integer from 0 to 2^32 - 1.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Draw a conclusion again only after a change
   * ```ts
   * import assert from "node:assert/strict";
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * const seen = store.changeCount();
   * assert.equal(store.changeCount(), seen);
   * store.write("maintenance", true);
   * assert.notEqual(store.changeCount(), seen);
   * Memalloc.unlink(name);
   * ```
   */
  changeCount(): number {
    return this.#open().changeCount();
  }

  /**
   * Reads the value written under a name.
   *
   * With `{ frozen: true }` the value comes back deeply frozen (objects and arrays frozen;
   * Maps, Sets and Dates with mutators that throw a `TypeError`) and is kept in this handle's
   * decode cache: while the entry keeps its version, the next frozen read checks the version,
   * lock-free, and returns the same object without decoding it again. Once any process writes,
   * deletes, evicts or expires the entry, or purges the store, the next frozen read decodes the
   * new value: never stale, never torn. Strings and numbers are returned as they are; byte
   * values, and objects that hold typed arrays (which cannot be frozen), are decoded afresh on
   * every read, as without `frozen`. Strings are cached too (they are immutable). Frozen arrays
   * leave the engines' fast `JSON.stringify` path (2 to 3 times slower on V8 and JavaScriptCore):
   * to send a stored object on as JSON, {@linkcode Memalloc.readJson} hands out its stored text.
   *
   * @param name Entry name.
   * @param options `frozen`: return a shared, deeply frozen value from the decode cache.
   * @returns The value (strings as strings, bytes as a new `Uint8Array`, other values decoded
   * from CBOR), or `undefined` when there is no such entry. Without `frozen`, a copy: changing
   * it changes nothing in the store. Under Deno, byte values of up to 4 KiB are views into a
   * 64 KiB `ArrayBuffer` that later reads share (as Node's `Buffer` pool does), since a buffer
   * of its own costs about ten times more there: `value.buffer` may hold other values, and
   * `value.slice()` gives a buffer of its own.
   * @throws {TypeError} For a bad name or bad options.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_CORRUPT` when the
   * segment is damaged beyond repair, or the stored value cannot be decoded (delete or
   * overwrite the entry).
   *
   * @example Read a missing name
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * console.log(store.read("nothing here")); // undefined
   * Memalloc.unlink(name);
   * ```
   *
   * @example Frozen reads share one decoded object until the entry changes
   * ```ts
   * import assert from "node:assert/strict";
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("session", { user: "ada", roles: ["admin"] });
   * const first = store.read("session", { frozen: true });
   * assert.equal(store.read("session", { frozen: true }), first); // the same object
   * assert.ok(Object.isFrozen(first));
   * store.write("session", { user: "ada", roles: [] });
   * assert.deepEqual(store.read("session", { frozen: true }), { user: "ada", roles: [] });
   * Memalloc.unlink(name);
   * ```
   */
  read<T = unknown>(name: string, options?: MemallocReadOptions): T | undefined {
    if (options !== undefined) {
      checkOptionKeys(options, "read", READ_OPTION_KEYS);
      const frozen: unknown = options.frozen;
      if (frozen !== undefined && typeof frozen !== "boolean") {
        throw new TypeError(
          `The frozen option of read() must be a boolean, got ${describe(frozen)}`,
        );
      }
      if (frozen === true) return this.#readFrozen<T>(name);
    }
    const value = this.#open().read(name, readValue);
    if (!(value instanceof Cbor)) return value as T | undefined;
    return this.#decode<T>(name, value.kind, value.bytes);
  }

  /**
   * Reads a value as JSON text, for an answer that sends it on as it is (an HTTP response, a
   * message): a value stored as JSON text (plain objects and arrays, see the README) is
   * returned as the stored text, with no decode and no `JSON.stringify`; a string comes back
   * as `JSON.stringify(string)`, a finite number as its JSON text.
   *
   * @param name Entry name.
   * @returns The JSON text, or `undefined` when there is no such entry.
   * @throws {TypeError} For a bad name; for a value JSON cannot hold as it is (bytes, a number
   * such as `NaN` or `-0`, or a value stored as CBOR: one with a Date, Map, bigint ...), naming
   * the entry: `read()` it instead.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Send a stored object as JSON, with no decode
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("session:1", { user: "ada", roles: ["admin"] });
   * const body = store.readJson("session:1");
   * console.log(body); // {"user":"ada","roles":["admin"]}
   * const response = new Response(body, { headers: { "content-type": "application/json" } });
   * console.log(response.status); // 200
   * Memalloc.unlink(name);
   * ```
   */
  readJson(name: string): string | undefined {
    const value = this.#open().read(name, readJsonText);
    if (value === undefined) return undefined;
    const kind = lastJsonReadKind();
    if (kind === KIND_JSON) return value as string;
    if (kind === KIND_STRING) return JSON.stringify(value);
    if (typeof value === "number" && Number.isFinite(value) && !Object.is(value, -0)) {
      return JSON.stringify(value);
    }
    if (value instanceof Cbor) {
      // CBOR: what JSON cannot hold, or any object in a store older than JSON text.
      const encoded = encodeValue(this.#decode(name, value.kind, value.bytes), Infinity, true);
      if (encoded.kind === KIND_JSON) return decodeUtf8(encoded.bytes);
    }
    const what = kind === KIND_BYTES
      ? "bytes"
      : kind === KIND_NUMBER
      ? `the number ${String(Object.is(value, -0) ? "-0" : value)}`
      : "a value JSON has no exact form for (a Date, Map, Set, bigint, typed array, undefined, -0, NaN, a cycle ...)";
    throw new TypeError(
      `Cannot read "${name}" as JSON text: it holds ${what}; read() it instead`,
    );
  }

  /**
   * The reader of frozen reads: `CACHED` when the entry's version is the cached one (nothing
   * copied), else the value's bytes (as a plain read copies them) with `#found` set to its
   * version. Inside the seqlock check, so the version and the bytes belong together.
   */
  #frozenReader = (
    kind: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    entry: number,
  ): string | number | Uint8Array | Cbor | typeof CACHED => {
    const version = this.#store!.versionAt(entry);
    if (version === this.#wanted) return CACHED;
    this.#found = version;
    return readValue(kind, bytes, start, end);
  };

  #readFrozen<T>(name: string): T | undefined {
    const store = this.#open();
    const cache = this.#frozen ??= new DecodeCache(this.#cacheLimits);
    const cached = cache.get(name);
    this.#wanted = cached === undefined ? -1 : cached.version;
    const value = store.read(name, this.#frozenReader);
    if (value === CACHED) return cache.hit(cached!) as T;
    if (value === undefined) {
      if (this.#wanted !== -1) cache.delete(name); // deleted, evicted, expired or purged
      return undefined;
    }
    if (typeof value === "string") {
      // Immutable already; cached, it is not copied out and decoded from UTF-8 again.
      cache.set(name, this.#found, value, value.length);
      return value as T;
    }
    if (!(value instanceof Cbor)) {
      // Numbers cost nothing to decode; bytes cannot be frozen: a copy each time.
      if (this.#wanted !== -1) cache.delete(name);
      return value as T;
    }
    const decoded = this.#decode<T>(name, value.kind, value.bytes);
    if (deepFreeze(decoded)) cache.set(name, this.#found, decoded, value.bytes.length);
    else if (this.#wanted !== -1) cache.delete(name);
    return decoded;
  }

  /** Decodes a stored value; bytes that do not decode are a damaged segment. */
  #decode<T>(name: string, kind: number, bytes: Uint8Array): T {
    try {
      return decodeValue(kind, bytes, this.#records) as T;
    } catch (error) {
      // encodeValue wrote these bytes: if they do not decode, the segment was damaged.
      throw new MemallocError(
        `Store "${this.name}" is corrupt: the value of "${name}" cannot be decoded (${
          error instanceof Error ? error.message : String(error)
        }); delete or overwrite it`,
        { code: "ERR_MEMALLOC_CORRUPT", store: this.name, cause: error },
      );
    }
  }

  /**
   * Removes an entry.
   *
   * @param name Entry name.
   * @param options `ifVersion`: delete only that version of the entry.
   * @returns Whether an entry was deleted.
   * @throws {TypeError} For a bad name or bad options.
   * @throws {RangeError} For an `ifVersion` that is not a whole number from 0 to 2^53 - 1.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_CORRUPT` when the
   * segment is damaged and still is after the repair this call runs.
   *
   * @example Delete an entry
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", 1);
   * console.log(store.delete("a"), store.delete("a")); // true false
   * Memalloc.unlink(name);
   * ```
   */
  delete(name: string, options?: MemallocDeleteOptions): boolean {
    const store = this.#open();
    if (options === undefined) return store.delete(name);
    const ifVersion = checkVersionOption(options, "delete", DELETE_OPTION_KEYS, false);
    return store.delete(name, ifVersion ?? undefined);
  }

  /**
   * Kind, size, timestamps and version of an entry, without reading its value.
   *
   * @param name Entry name.
   * @returns The entry's metadata, or `undefined` when there is no such entry.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Creation and write times, and the version a write raises
   * ```ts
   * import assert from "node:assert/strict";
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", new Uint8Array([1, 2, 3]));
   * const info = store.info("a")!;
   * console.log(info.kind, info.size, info.created <= info.written); // bytes 3 true
   * store.write("a", "again");
   * assert.ok(store.info("a")!.version > info.version);
   * Memalloc.unlink(name);
   * ```
   */
  info(name: string): MemallocEntryInfo | undefined {
    const info: EntryInfo | undefined = this.#open().info(name);
    return info === undefined ? undefined : toEntryInfo(info);
  }

  /**
   * Evicts the oldest-written entries until usage is at or below the watermark
   * (`autoclean × maxMemory`). Does nothing when usage is already there.
   *
   * @returns The number of entries evicted.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_CORRUPT` when the
   * segment is damaged and still is after the repair this call runs.
   *
   * @example Clean a store below its watermark
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", "x");
   * console.log(store.clean()); // 0
   * Memalloc.unlink(name);
   * ```
   */
  clean(): number {
    return this.#open().clean();
  }

  /**
   * Removes every entry now. Counters (writes, hits, ...) are kept.
   *
   * @returns The number of entries removed.
   * @throws {MemallocError} When the store is closed; `ERR_MEMALLOC_CORRUPT` when the
   * segment is damaged and still is after the repair this call runs.
   *
   * @example Empty a store
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", 1);
   * store.write("b", 2);
   * console.log(store.purge(), store.stats().entries); // 2 0
   * Memalloc.unlink(name);
   * ```
   */
  purge(): number {
    return this.#open().purge();
  }

  /**
   * Figures for the whole store: entries, bytes used and free, capacity, largest free block,
   * watermark, and the counters all processes share (writes, hits, misses, evictions,
   * deletes, repairs). Each process adds its hits and misses to the shared counters every 256
   * reads and whenever it calls `stats()` or `close()`.
   *
   * @returns The figures.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Read the figures
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", "x");
   * store.read("a");
   * const { entries, writes, hits } = store.stats();
   * console.log(entries, writes, hits); // 1 1 1
   * Memalloc.unlink(name);
   * ```
   */
  stats(): MemallocStats {
    const segment = this.#segment;
    return {
      name: this.name,
      createdAt: segment.createdAt,
      lockKind: segment.lockKind,
      ...this.#open().stats(),
    };
  }

  /**
   * The memory map of the store's heap, for tools that draw it: its blocks summed into `cells`
   * cells of equal length, each giving the bytes free and the bytes of entries by value kind,
   * with the fragmentation figure and a histogram of free block sizes. It walks every block
   * under the store's lock (about 10 ns a block: 5 ms for 500,000 entries), holding up writers
   * meanwhile, and changes nothing.
   *
   * @param cells How many cells to cut the heap into, from 1 to 65,536 (default 1,024).
   * @returns The map.
   * @throws {TypeError} When `cells` is not an integer.
   * @throws {RangeError} When `cells` is out of range.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Fragmentation of a fresh store
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.write("a", "x");
   * const map = store.map(64);
   * console.log(map.cells.length, map.fragmentation); // 64 0
   * Memalloc.unlink(name);
   * ```
   */
  map(cells: number = 1024): StoreMap {
    if (typeof cells !== "number" || !Number.isInteger(cells)) {
      throw new TypeError(`cells must be an integer, got ${describe(cells)}`);
    }
    if (cells < 1 || cells > 65536) {
      throw new RangeError(`cells must be from 1 to 65536, got ${cells}`);
    }
    return this.#open().map(cells);
  }

  /**
   * Checks the whole segment and returns what is wrong: the segment and store headers, the heap
   * block by block (boundary tags, free lists, counters), the directory, the write order and the
   * entry count. Changes nothing; takes the shared lock; bounded by the segment's size, and
   * never throws on a damaged segment. The next write repairs what it finds.
   *
   * @returns Problems found; empty when the store is consistent.
   * @throws {MemallocError} When the store is closed.
   *
   * @example Verify a store
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * console.log(store.verify()); // []
   * Memalloc.unlink(name);
   * ```
   */
  verify(): string[] {
    const problems = this.#open().verify();
    // The segment header, written once at creation and checked at open.
    const header = new DataView(this.#segment.buffer, 0, SEGMENT_HEADER_BYTES);
    if (header.getUint32(SEG_MAGIC, true) !== MAGIC) problems.unshift("segment header: bad magic");
    const version = header.getUint32(SEG_VERSION, true);
    if (version < OLDEST_LAYOUT_VERSION || version > LAYOUT_VERSION) {
      problems.unshift(`segment header: layout version ${header.getUint32(SEG_VERSION, true)}`);
    }
    if (header.getFloat64(SEG_SIZE, true) !== this.maxMemory) {
      problems.unshift(`segment header: size ${header.getFloat64(SEG_SIZE, true)}`);
    }
    return problems;
  }

  /**
   * Closes this handle: adds its read counts to the shared counters, unmaps the segment and
   * closes its descriptor. The entries stay for other processes and later opens. Safe to call
   * twice; later calls on this handle throw `ERR_MEMALLOC_CLOSED`.
   *
   * @example Close twice
   * ```ts
   * import { Memalloc } from "./memalloc.ts";
   *
   * const name = `doc-${crypto.randomUUID()}`;
   * const store = Memalloc.open(name, { maxMemory: 1 << 20 });
   * store.close();
   * store.close();
   * Memalloc.unlink(name);
   * ```
   */
  close(): void {
    const store = this.#store;
    if (store === null) return;
    this.#store = null;
    this.#frozen = null;
    store.flushCounters();
    this.#segment.close();
  }

  /** Same as {@linkcode Memalloc.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
