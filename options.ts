/**
 * The options of a memalloc store and of its calls: their types, their defaults, and the checks
 * that refuse a bad option with a `TypeError` or `RangeError` before anything changes.
 *
 * @module
 */
import { MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE } from "./allocator/layout.ts";
import {
  type DecodeCacheLimits,
  DEFAULT_DECODE_CACHE_BYTES,
  DEFAULT_DECODE_CACHE_ENTRIES,
} from "./frozen.ts";
import { checkLockOptions, checkTrust, describe, type MemallocTrust } from "./ffi/segment.ts";

/** Default segment size: 50 MiB, as in the original PHP library. */
export const DEFAULT_MAX_MEMORY: number = 50 * 1024 * 1024;
/** Default eviction watermark: usage is brought down to 80% of the segment. */
export const DEFAULT_AUTOCLEAN = 0.8;
/** Name of the store the module-level functions use. */
export const DEFAULT_STORE = "default";

/** Options for {@linkcode Memalloc.open}. They apply when the call creates the store. */
export interface MemallocOptions {
  /**
   * Segment size in bytes, from 64 KiB to 4 GiB (default 50 MiB). It is reserved in
   * `/dev/shm` when the store is created. An existing store keeps its size.
   */
  maxMemory?: number;
  /**
   * Eviction watermark, a fraction in (0, 1] (default 0.8): a write that does not fit, and
   * `clean()`, evict the oldest entries until usage is at or below `autoclean × maxMemory`.
   * An existing store keeps its watermark.
   */
  autoclean?: number;
  /**
   * Permission bits of a new segment (default `0o600`: the owner only). For an existing store,
   * the most it may allow others: a store writable by its group or by every user is opened
   * only when `mode` (or `trust.group`) allows that too.
   */
  mode?: number;
  /**
   * Whom to trust besides the calling user, for a store shared between users on purpose. By
   * default an existing store must be owned by the calling user and writable by no one else,
   * or the open fails with `ERR_MEMALLOC_UNTRUSTED`: anyone can create a store under any name
   * in `/dev/shm` before its application does. `owners` lists other user ids that may own it;
   * `group` gives a store this call creates to that group, and lets an existing store be
   * writable by its group when its group is this one.
   */
  trust?: MemallocTrust;
  /**
   * The lock kind of a store this call creates: `"mutex"`, a robust process-shared mutex in
   * the segment (the default where the C library is glibc: about 20 ns a lock), or `"flock"`
   * (any C library; about 0.6 µs). `MEMALLOC_LOCK` sets the default. Every process then uses
   * the kind the store records; one that cannot take it refuses to open the store.
   */
  lock?: "mutex" | "flock";
  /**
   * How long a call waits for the store's lock while another process holds it, in ms (default
   * 5,000). A holder that is stopped, not dead, then gives `ERR_MEMALLOC_LOCK_TIMEOUT` naming
   * its pid, and the call changes nothing.
   */
  lockTimeout?: number;
  /**
   * Whether to create the store when it does not exist (default `true`). With `false`, a
   * missing store is a `MemallocError` with code `ERR_MEMALLOC_NOT_FOUND` and nothing is
   * created: what tools that only look at stores use.
   */
  create?: boolean;
  /**
   * This handle's default time to live for what it writes, in ms (default 0: no expiry):
   * `write`, `add` and `update` without a `ttl` of their own, and `increment` when it creates
   * an entry, use it. Other handles and processes have their own.
   */
  ttl?: number;
  /**
   * The bounds of this handle's cache of values read with `{ frozen: true }` (default 10,000
   * values and 32 MiB of their stored bytes; `{ entries: 0 }` turns it off). The cache lives in
   * this process only, is made at the first frozen read, and is dropped on `close()`.
   */
  decodeCache?: DecodeCacheLimits;
  /**
   * How this handle writes plain objects and arrays that JSON keeps exactly (default
   * `"records"`): `"records"`, CBOR records over a table of key lists that the store shares
   * between its processes (a read of a 1 KiB object is about twice as fast as from JSON text on
   * Deno and Node and about as fast on Bun, a write takes about 1.5 times as long, and the object
   * takes about 40% less room); `"json"`, JSON text, which {@linkcode Memalloc.readJson} hands
   * back as it is, with no decode, for servers that send values on as JSON. Every handle reads both, whatever it writes. A store made by a memalloc
   * before records (layout 4 or 5) gets JSON text either way.
   */
  objects?: "records" | "json";
}

/** What {@linkcode Memalloc.read} takes besides the name. */
export interface MemallocReadOptions {
  /**
   * Return the value deeply frozen, and keep it in this handle's cache (see
   * {@linkcode MemallocOptions.decodeCache}): while the entry keeps its version, the next frozen
   * read returns the same object without decoding. Default `false`: a fresh, mutable copy.
   */
  frozen?: boolean;
}

const OPTION_KEYS = new Set([
  "maxMemory",
  "autoclean",
  "mode",
  "trust",
  "lock",
  "lockTimeout",
  "create",
  "ttl",
  "decodeCache",
  "objects",
]);
export const READ_OPTION_KEYS = new Set(["frozen"]);
/** What {@linkcode Memalloc.write} takes besides the name and the value. */
export interface MemallocWriteOptions {
  /**
   * Write only when the entry's version is this one (see {@linkcode MemallocEntryInfo.version}),
   * or, with `null`, only when there is no entry: a compare-and-set that several processes can
   * race on, exactly one winning. Otherwise `write` returns `false` and changes nothing.
   */
  ifVersion?: number | null;
  /**
   * Time to live in ms from this write: the entry is gone for every reader of every process
   * from that instant. 0 for no expiry; absent: the handle's default
   * ({@linkcode MemallocOptions.ttl}).
   */
  ttl?: number;
}

/** What {@linkcode Memalloc.add} and {@linkcode Memalloc.update} take. */
export interface MemallocTtlOptions {
  /** Time to live in ms, as for {@linkcode MemallocWriteOptions.ttl}. */
  ttl?: number;
}

/** What {@linkcode Memalloc.delete} takes besides the name. */
export interface MemallocDeleteOptions {
  /** Delete only when the entry's version is this one; otherwise return `false`. */
  ifVersion?: number;
}

/** What {@linkcode Memalloc.increment} takes besides the name and the delta. */
export interface MemallocIncrementOptions {
  /** The value a missing (or expired) name starts from before `delta` is added (default 0). */
  initial?: number;
  /**
   * Time to live in ms of an entry this call creates (a missing or expired name); an existing
   * entry keeps its expiry. Absent: the handle's default.
   */
  ttl?: number;
}

export const WRITE_OPTION_KEYS = new Set(["ifVersion", "ttl"]);
export const DELETE_OPTION_KEYS = new Set(["ifVersion"]);
export const INCREMENT_OPTION_KEYS = new Set(["initial", "ttl"]);
const TTL_OPTION_KEYS = new Set(["ttl"]);

/** Throws unless `ttl` is a time to live in ms: a finite number from 0 up; returns it. */
export function checkTtl(ttl: unknown, verb: string): number {
  if (typeof ttl !== "number") {
    throw new TypeError(`The ttl of ${verb}() must be a number of ms, got ${describe(ttl)}`);
  }
  if (!Number.isFinite(ttl) || ttl < 0) {
    throw new RangeError(
      `The ttl of ${verb}() must be a finite number of ms from 0 up (0: no expiry), got ${ttl}`,
    );
  }
  return ttl;
}

/** The ttl of `add`/`update` options, checked, or `fallback` when there is none. */
export function ttlOption(
  options: MemallocTtlOptions | undefined,
  verb: string,
  fallback: number,
): number {
  if (options === undefined) return fallback;
  checkOptionKeys(options, verb, TTL_OPTION_KEYS);
  return options.ttl === undefined ? fallback : checkTtl(options.ttl, verb);
}

/** Throws a `TypeError` unless `options` is an object with only `keys`. */
export function checkOptionKeys(
  options: unknown,
  verb: string,
  keys: Set<string>,
  what: string = "options",
): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`The ${what} of ${verb}() must be an object, got ${describe(options)}`);
  }
  const label = what === "options" ? "" : `${what} `;
  for (const key of Object.keys(options)) {
    if (!keys.has(key)) {
      throw new TypeError(
        `Unknown ${label}option "${key}" for ${verb}(): the ${label}options are ${
          [...keys].join(", ")
        }`,
      );
    }
  }
}

/** The `ifVersion` of write or delete options, checked: a version, `null` (write only), or absent. */
export function checkVersionOption(
  options: MemallocWriteOptions | MemallocDeleteOptions,
  verb: string,
  keys: Set<string>,
  allowNull: boolean,
): number | null | undefined {
  checkOptionKeys(options, verb, keys);
  return checkVersion(options.ifVersion, allowNull);
}

/** An `ifVersion`, checked: a version, `null` (where `allowNull`), or absent. */
export function checkVersion(version: unknown, allowNull: boolean): number | null | undefined {
  if (version === undefined || (version === null && allowNull)) return version;
  if (typeof version !== "number") {
    throw new TypeError(
      `ifVersion must be a version number${allowNull ? " or null" : ""}, got ${describe(version)}`,
    );
  }
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`ifVersion must be a whole number from 0 to 2^53 - 1, got ${version}`);
  }
  return version;
}

/** Throws unless `value` is a finite number; returns it. */
export function checkFinite(value: unknown, what: string, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot increment "${name}": ${what} must be a number, got ${describe(value)}`,
    );
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`Cannot increment "${name}": ${what} must be finite, got ${value}`);
  }
  return value;
}

/** What {@linkcode Memalloc.keys} and {@linkcode Memalloc.entries} take. */
export interface MemallocListOptions {
  /** Only names that start with this string (compared as UTF-8 bytes). */
  prefix?: string;
  /** At most this many (a whole number; default: all). */
  limit?: number;
}

const LIST_OPTION_KEYS = new Set(["prefix", "limit"]);
const prefixEncoder = new TextEncoder();

/** The prefix (as UTF-8) and limit of keys()/entries() options, checked. */
export function checkListOptions(
  options: MemallocListOptions | undefined,
  verb: string,
): { prefix: Uint8Array; limit: number } {
  const { prefix, limit } = checkListText(options, verb);
  return { prefix: prefix === "" ? new Uint8Array(0) : prefixEncoder.encode(prefix), limit };
}

/** The prefix and limit of keys()/entries()/list() options, checked, the prefix as a string. */
export function checkListText(options: unknown, verb: string): { prefix: string; limit: number } {
  if (options === undefined) return { prefix: "", limit: Infinity };
  checkOptionKeys(options, verb, LIST_OPTION_KEYS);
  const { prefix = "", limit = Infinity } = options as MemallocListOptions;
  if (typeof prefix !== "string") {
    throw new TypeError(`The prefix of ${verb}() must be a string, got ${describe(prefix)}`);
  }
  if (!prefix.isWellFormed()) {
    throw new TypeError(`The prefix of ${verb}() contains a lone surrogate`);
  }
  if (typeof limit !== "number") {
    throw new TypeError(`The limit of ${verb}() must be a number, got ${describe(limit)}`);
  }
  if (!(limit >= 0) || (limit !== Infinity && !Number.isInteger(limit))) {
    throw new RangeError(`The limit of ${verb}() must be a whole number from 0 up, got ${limit}`);
  }
  return { prefix, limit };
}

/**
 * What {@linkcode Memalloc.watch} needs of a signal: any `AbortSignal` is one. (Declared here so
 * that the package's types need no DOM or Node library.)
 */
export interface MemallocAbortSignal {
  /** Whether it has aborted. */
  readonly aborted: boolean;
  /** Adds the listener for its `abort` event. */
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  /** Removes it. */
  removeEventListener(type: "abort", listener: () => void): void;
}

/** What {@linkcode Memalloc.watch} takes besides the names. */
export interface MemallocWatchOptions {
  /** Ends the watch when it aborts (an `AbortSignal`, as `AbortController` makes). */
  signal?: MemallocAbortSignal;
}

const WATCH_OPTION_KEYS = new Set(["signal"]);

/** The signal of watch() options, checked: anything with `aborted` and the two listener calls. */
export function checkWatchSignal(options: unknown): MemallocAbortSignal | undefined {
  if (options === undefined) return undefined;
  checkOptionKeys(options, "watch", WATCH_OPTION_KEYS);
  const signal = (options as MemallocWatchOptions).signal;
  if (
    signal !== undefined &&
    (typeof signal !== "object" || signal === null || typeof signal.aborted !== "boolean" ||
      typeof signal.addEventListener !== "function" ||
      typeof signal.removeEventListener !== "function")
  ) {
    throw new TypeError(`The signal of watch() must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: MemallocAbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
type CheckedOptions =
  & Required<Pick<MemallocOptions, "maxMemory" | "autoclean" | "mode">>
  & Pick<MemallocOptions, "trust" | "lock" | "lockTimeout" | "create" | "ttl" | "objects">
  & { decodeCache?: Required<DecodeCacheLimits> };

export function checkOptions(options: unknown): CheckedOptions {
  if (options === undefined) {
    return { maxMemory: DEFAULT_MAX_MEMORY, autoclean: DEFAULT_AUTOCLEAN, mode: 0o600 };
  }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Store options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new TypeError(
        `Unknown store option "${key}": the options are maxMemory, autoclean, mode, trust, lock, lockTimeout, create, ttl, decodeCache and objects`,
      );
    }
  }
  const {
    maxMemory = DEFAULT_MAX_MEMORY,
    autoclean = DEFAULT_AUTOCLEAN,
    mode = 0o600,
    trust,
    lock,
    lockTimeout,
    create,
    ttl,
    decodeCache,
    objects,
  } = options as MemallocOptions;
  if (objects !== undefined && objects !== "records" && objects !== "json") {
    throw new TypeError(`objects must be "records" or "json", got ${describe(objects)}`);
  }
  if (ttl !== undefined) checkTtl(ttl, "open");
  const cacheLimits = decodeCache === undefined ? undefined : checkDecodeCache(decodeCache);
  if (create !== undefined && typeof create !== "boolean") {
    throw new TypeError(`create must be a boolean, got ${describe(create)}`);
  }
  checkTrust(trust);
  checkLockOptions(lock, lockTimeout);
  if (typeof maxMemory !== "number" || !Number.isInteger(maxMemory)) {
    throw new TypeError(`maxMemory must be an integer number of bytes, got ${describe(maxMemory)}`);
  }
  if (maxMemory < MIN_SEGMENT_SIZE || maxMemory > MAX_SEGMENT_SIZE) {
    throw new RangeError(
      `maxMemory ${maxMemory} is out of range: it must be from ${MIN_SEGMENT_SIZE} to ${MAX_SEGMENT_SIZE} bytes`,
    );
  }
  if (typeof autoclean !== "number" || Number.isNaN(autoclean)) {
    throw new TypeError(`autoclean must be a number in (0, 1], got ${describe(autoclean)}`);
  }
  if (!(autoclean > 0 && autoclean <= 1)) {
    throw new RangeError(`autoclean must be in (0, 1], got ${autoclean}`);
  }
  const checked: CheckedOptions = { maxMemory, autoclean, mode };
  if (trust !== undefined) checked.trust = trust;
  if (lock !== undefined) checked.lock = lock;
  if (lockTimeout !== undefined) checked.lockTimeout = lockTimeout;
  if (create !== undefined) checked.create = create;
  if (ttl !== undefined) checked.ttl = ttl;
  if (cacheLimits !== undefined) checked.decodeCache = cacheLimits;
  if (objects !== undefined) checked.objects = objects;
  return checked;
}

/** The `decodeCache` option, checked, with its defaults filled in. */
export function checkDecodeCache(limits: unknown): Required<DecodeCacheLimits> {
  checkOptionKeys(limits, "open", new Set(["entries", "bytes"]), "decodeCache");
  const { entries = DEFAULT_DECODE_CACHE_ENTRIES, bytes = DEFAULT_DECODE_CACHE_BYTES } =
    limits as DecodeCacheLimits;
  for (const [key, value] of [["entries", entries], ["bytes", bytes]] as const) {
    if (typeof value !== "number") {
      throw new TypeError(`decodeCache.${key} must be a number, got ${describe(value)}`);
    }
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`decodeCache.${key} must be a whole number from 0 up, got ${value}`);
    }
  }
  return { entries, bytes };
}
