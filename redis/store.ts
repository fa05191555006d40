/**
 * `RedisStore`: the operations of `Memalloc` on a Redis 7 or Valkey 8 server, for stores that
 * several machines share. Values are encoded as `Memalloc` encodes them (strings as UTF-8, bytes
 * raw, numbers as float64, the rest CBOR), so a value means the same in both; eviction, expiry,
 * versions and conditional writes run in Lua scripts on the server, one script per call, so
 * that many clients can use a store at once and nothing is ever half-applied.
 *
 * It needs the npm package `redis` (node-redis), a peer dependency that only this entry point
 * loads.
 *
 * @example Write, read, delete
 * ```ts ignore
 * import { RedisStore } from "@memalloc/memalloc/redis";
 *
 * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "sessions");
 * await store.write("user:1", { name: "Ada" }, { ttl: 60_000 });
 * console.log(await store.read("user:1")); // { name: "Ada" }
 * console.log(await store.delete("user:1")); // true
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { RESP_TYPES } from "redis";
import { decodeNumber, decodeValue, encodeValue, KIND_STRING } from "../allocator/codec.ts";
import { MemallocError } from "../errors.ts";
import type { MemallocEntryInfo, MemallocListedEntry, MemallocWatchEntry } from "../memalloc.ts";
import type {
  MemallocAbortSignal,
  MemallocDeleteOptions,
  MemallocIncrementOptions,
  MemallocListOptions,
  MemallocTtlOptions,
  MemallocWatchOptions,
  MemallocWriteOptions,
} from "../options.ts";
import {
  checkEntryName,
  checkFinite,
  checkListOptions,
  checkOptionKeys,
  checkStoreName,
  checkStoreOptions,
  checkTtl,
  checkVersion,
  describe,
} from "./_checks.ts";
import {
  type Client,
  closeClient,
  type Cluster,
  ClusterClient,
  connectClient,
  isClient,
  isCluster,
  message,
  redact,
} from "./_client.ts";
import type { RedisClientLike, RedisClusterLike } from "./_client_like.ts";
import { float64, parseHeader, type StoredEntry } from "./_entry.ts";
import { toEntryInfo } from "../_values.ts";
import {
  checkWatchSignal,
  DEFAULT_AUTOCLEAN,
  DEFAULT_MAX_MEMORY,
  DELETE_OPTION_KEYS,
  INCREMENT_OPTION_KEYS,
  pause,
  ttlOption,
  WRITE_OPTION_KEYS,
} from "../options.ts";
import * as scripts from "./_scripts.ts";
import { HEADER_BYTES, HEADER_FORMAT } from "./_scripts.ts";

export { MemallocError } from "../errors.ts";
export type { RedisClientLike, RedisClusterLike } from "./_client_like.ts";
export type { StoreStats } from "../allocator/store.ts";
export type {
  MemallocEntryInfo,
  MemallocListedEntry,
  MemallocStats,
  MemallocWatchEntry,
} from "../memalloc.ts";
export type {
  MemallocAbortSignal,
  MemallocDeleteOptions,
  MemallocIncrementOptions,
  MemallocListOptions,
  MemallocTtlOptions,
  MemallocWatchOptions,
  MemallocWriteOptions,
} from "../options.ts";

/** How many times `update` tries again when another client wrote the entry meanwhile. */
const UPDATE_TRIES = 32;
/** Entries a walk fetches per round trip. */
const SCAN_CHUNK = 256;
/** Reads between two additions of this client's hits and misses to the store's counters. */
const COUNTER_FLUSH = 256;

/** Options for {@linkcode RedisStore.connect}. */
export interface RedisStoreOptions {
  /**
   * The store's size in bytes, counted as the names' and values' UTF-8/raw bytes (default
   * 50 MiB). A store that exists on the server keeps its size.
   */
  maxMemory?: number;
  /** Eviction watermark, a fraction in (0, 1] (default 0.8); an existing store keeps its own. */
  autoclean?: number;
  /** This handle's default time to live for what it writes, in ms (default 0: none). */
  ttl?: number;
  /** How long `connect` waits for the server, in ms (default 5,000). */
  connectTimeout?: number;
}

/** Figures for a whole store on the server, shared by every client. */
export interface RedisStoreStats {
  /** The store name. */
  name: string;
  /** Live entries. */
  entries: number;
  /** Bytes the entries count for (names and values). */
  bytesUsed: number;
  /** The store's size, `maxMemory`. */
  capacity: number;
  /** Usage that eviction brings the store down to, in bytes (`autoclean × capacity`). */
  watermark: number;
  /** The watermark as a fraction of the capacity. */
  autoclean: number;
  /** Writes by all clients since the store was created (the version counter). */
  writes: number;
  /** Reads that found their name (every client's, as far as each has reported them). */
  hits: number;
  /** Reads that did not. */
  misses: number;
  /** Entries evicted to make room or by `clean()`. */
  evictions: number;
  /** Entries removed by `delete()`. */
  deletes: number;
  /** Expired entries whose accounting the store has settled. */
  expired: number;
  /** When the store was created on the server (ms since the epoch). */
  createdAt: number;
}

interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const SCRIPTS = {
  init: script(scripts.INIT),
  write: script(scripts.WRITE),
  increment: script(scripts.INCREMENT),
  delete: script(scripts.DELETE),
  clean: script(scripts.CLEAN),
  purge: script(scripts.PURGE),
  stats: script(scripts.STATS),
  scan: script(scripts.SCAN),
} as const;

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Whether `error` is the server's reply that it does not have a script. */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/**
 * A memalloc store on a Redis or Valkey server: the operations of `Memalloc`, each returning a
 * promise, over one connection that node-redis reconnects when it drops. A call made while the
 * connection is down fails at once with a `MemallocError` whose code is `ERR_MEMALLOC_REMOTE`
 * (the client's error is its `cause`); a call in flight when it drops fails the same way, and
 * was applied on the server whole or not at all.
 *
 * @example Counters shared by every machine
 * ```ts ignore
 * import { RedisStore } from "@memalloc/memalloc/redis";
 *
 * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "stats");
 * await store.increment("views");
 * console.log(await store.increment("views", 10)); // 11
 * ```
 */
export class RedisStore {
  /** The store name. */
  readonly name: string;
  /** The store's size on the server, in bytes: its real one, whatever was asked. */
  readonly maxMemory: number;
  /** The store's eviction watermark, a fraction of `maxMemory`. */
  readonly autoclean: number;
  /** The default time to live of this handle's writes, in ms; 0 for none. */
  readonly ttl: number;
  /** The server, without credentials. */
  readonly url: string;

  #client: Client | null;
  /** Whether close() closes the client: false for one the caller passed in. */
  readonly #owned: boolean;
  #subscriber: Promise<Client> | null = null;
  #subscriberClient: Client | null = null;
  readonly #listeners = new Set<(name: string | null) => void>();
  readonly #meta: string;
  readonly #prefix: string;
  readonly #channel: string;
  #hits = 0;
  #misses = 0;

  private constructor(
    client: Client,
    url: string,
    name: string,
    settings: { maxMemory: number; autoclean: number; ttl: number },
    owned: boolean,
  ) {
    this.#client = client;
    this.#owned = owned;
    this.url = url;
    this.name = name;
    this.maxMemory = settings.maxMemory;
    this.autoclean = settings.autoclean;
    this.ttl = settings.ttl;
    const base = `memalloc:{${name}}:`;
    this.#meta = `${base}meta`;
    this.#prefix = `${base}e:`;
    this.#channel = `${base}changes`;
  }

  /**
   * Connects to a server and opens the store called `name` there, creating its settings when
   * it does not exist (an existing store keeps its `maxMemory` and `autoclean`).
   *
   * @param url The server: `redis://[user:password@]host:port[/db]` or `rediss://...`; or a
   * connected node-redis client (`createClient()`) or cluster client (`createCluster()`), which
   * the store then shares and does not close. On a cluster, every key of a store is in the hash
   * slot of `{name}`, so each store lives whole on one shard and its scripts run there. The store's own client rejects calls at once while it reconnects; a client given
   * queues them unless it was made with `disableOfflineQueue: true`.
   * @param name Store name: 1 to 200 UTF-8 bytes, without `{` or `}`.
   * @param options `maxMemory`, `autoclean`, the handle's `ttl`, and `connectTimeout`.
   * @returns The open store; close it with {@linkcode RedisStore.close} or `await using`.
   * @throws {TypeError} For a bad name or option type, or an unknown option.
   * @throws {RangeError} For an option out of range.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` when the server cannot be reached in time.
   *
   * @example Connect with a default TTL
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * const store = await RedisStore.connect("redis://127.0.0.1:6379", "cache", {
   *   maxMemory: 64 << 20,
   *   ttl: 60_000,
   * });
   * console.log(store.maxMemory, store.autoclean); // 67108864 0.8
   * await store.close();
   * ```
   */
  static async connect(
    url: string | RedisClientLike | RedisClusterLike,
    name: string,
    options?: RedisStoreOptions,
  ): Promise<RedisStore> {
    if (typeof url !== "string" && !isCluster(url) && !isClient(url)) {
      throw new TypeError(
        `connect() takes a redis:// URL, or a connected node-redis client or cluster, got ${
          describe(url)
        }`,
      );
    }
    checkStoreName(name);
    const {
      maxMemory = DEFAULT_MAX_MEMORY,
      autoclean = DEFAULT_AUTOCLEAN,
      ttl = 0,
      connectTimeout = 5_000,
    } = checkStoreOptions(options);
    let client: Client;
    let shown: string;
    const owned = typeof url === "string";
    if (typeof url !== "string" && isCluster(url)) {
      shown = "redis cluster (the client given)";
      if (!url.isReady) {
        throw new MemallocError(
          `Cannot open store "${name}": the cluster client given is not connected; await its connect() first`,
          { code: "ERR_MEMALLOC_REMOTE", store: name },
        );
      }
      // Every key of a store is in the hash slot of {name}: its meta key routes every call.
      client = new ClusterClient(
        url.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) as unknown as Cluster,
        `memalloc:{${name}}:meta`,
      );
    } else if (typeof url !== "string") {
      shown = redact(url.options?.url ?? "redis://(the client given)");
      if (!url.isReady) {
        throw new MemallocError(
          `Cannot open store "${name}": the client given is not connected; await its connect() first`,
          { code: "ERR_MEMALLOC_REMOTE", store: name },
        );
      }
      // The same connection, with bulk replies as Buffers (values are bytes).
      client = url.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) as unknown as Client;
    } else {
      shown = redact(url);
      client = await connectClient(url, name, shown, connectTimeout);
    }
    const settings = { maxMemory, autoclean, ttl };
    const store = new RedisStore(client, shown, name, settings, owned);
    const stored = await store.#run<Buffer[]>("connect", SCRIPTS.init, []).catch(
      async (error) => {
        await store.close();
        throw error;
      },
    );
    settings.maxMemory = Number(stored[0]);
    settings.autoclean = Number(stored[1]);
    return new RedisStore(client, shown, name, settings, owned);
  }

  #open(verb: string): Client {
    const client = this.#client;
    if (client === null) {
      throw new MemallocError(`Cannot ${verb}: store "${this.name}" is closed`, {
        code: "ERR_MEMALLOC_CLOSED",
        store: this.name,
      });
    }
    return client;
  }

  /** A failed call's error: ERR_MEMALLOC_REMOTE with the client's error as the cause. */
  #remote(verb: string, error: unknown): MemallocError {
    if (error instanceof MemallocError) return error;
    return new MemallocError(
      `Cannot ${verb} in store "${this.name}" on ${this.url}: ${message(error)}`,
      { code: "ERR_MEMALLOC_REMOTE", store: this.name, cause: error },
    );
  }

  /** Sends one command; connection and server errors become ERR_MEMALLOC_REMOTE. */
  async #send<T>(verb: string, args: ReadonlyArray<string | Buffer>): Promise<T> {
    const client = this.#open(verb);
    try {
      return await client.sendCommand<T>(args);
    } catch (error) {
      throw this.#remote(verb, error);
    }
  }

  /** Runs a script by its SHA-1, loading it when the server does not have it. */
  async #run<T>(verb: string, which: Script, args: ReadonlyArray<string | Buffer>): Promise<T> {
    const client = this.#open(verb);
    const tail = [
      "1",
      this.#meta,
      String(this.maxMemory),
      String(this.autoclean),
      String(Date.now()),
      ...args,
    ];
    try {
      try {
        return await client.sendCommand<T>(["EVALSHA", which.sha, ...tail]);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return await client.sendCommand<T>(["EVAL", which.source, ...tail]);
      }
    } catch (error) {
      throw this.#remote(verb, error);
    }
  }

  /** The value to send for `value`: a string as itself (node-redis sends UTF-8), else bytes. */
  #encode(value: unknown): { kind: number; data: string | Buffer; size: number } {
    const { kind, bytes } = encodeValue(value, this.maxMemory);
    // A copy: the codec's buffer is reused by the next call, before this one is sent.
    const data = kind === KIND_STRING ? value as string : Buffer.from(bytes);
    return { kind, data, size: bytes.length };
  }

  /** Throws the RangeError for a value too large for the store even when empty. */
  #checkFits(name: string, size: number): void {
    const total = size + Buffer.byteLength(name);
    if (total > this.maxMemory) {
      throw new RangeError(
        `Cannot write "${name}": its name and value take ${total} bytes, more than the store's maxMemory ${this.maxMemory}`,
      );
    }
  }

  #decode<T>(name: string, kind: number, bytes: Buffer): T {
    try {
      return decodeValue(kind, bytes) as T;
    } catch (error) {
      throw new MemallocError(
        `Store "${this.name}" is corrupt: the value of "${name}" cannot be decoded (${
          message(error)
        }); delete or overwrite it`,
        { code: "ERR_MEMALLOC_CORRUPT", store: this.name, cause: error },
      );
    }
  }

  async #write(
    verb: string,
    name: string,
    value: unknown,
    ttl: number,
    condition: string,
  ): Promise<{ written: boolean; version: number }> {
    const { kind, data, size } = this.#encode(value);
    this.#checkFits(name, size);
    const reply = await this.#run<[number, number]>(verb, SCRIPTS.write, [
      name,
      String(kind),
      data,
      String(Math.ceil(ttl)),
      condition,
    ]);
    if (reply[0] === -1) {
      // Another client's connect created the store smaller than this handle was told.
      throw new RangeError(
        `Cannot write "${name}": its name and value take ${
          reply[1]
        } bytes, more than the store's maxMemory on the server`,
      );
    }
    return { written: reply[0] === 1, version: reply[1] };
  }

  /**
   * Writes a value under a name, replacing any earlier value in one step. When the store's
   * bytes pass `maxMemory`, expired entries go first, then the oldest-written, until usage is at
   * `autoclean × maxMemory`: all in the same script on the server.
   *
   * @param name Entry name: a non-empty string of at most 250 UTF-8 bytes.
   * @param value A string, a `Uint8Array`, a number, or any value `Memalloc` can store.
   * @param options `ifVersion`: write only over that version (`null`: only when there is no
   * entry); `ttl`: time to live in ms (0: none), kept by the server's own expiry.
   * @returns Whether the value was written: always `true` without `ifVersion`.
   * @throws {TypeError} For a bad name, bad options, or a value that cannot be stored; nothing
   * is sent.
   * @throws {RangeError} For a name too long, or a value too large for the store.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` when the server cannot be reached;
   * `ERR_MEMALLOC_CLOSED` after `close()`.
   *
   * @example Write only over the version read
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.write("page", "v1");
   * const { version } = (await store.info("page"))!;
   * console.log(await store.write("page", "v2", { ifVersion: version })); // true
   * console.log(await store.write("page", "v3", { ifVersion: version })); // false
   * ```
   */
  async write(name: string, value: unknown, options?: MemallocWriteOptions): Promise<boolean> {
    this.#open("write");
    checkEntryName(name);
    let ttl = this.ttl;
    let condition = "";
    if (options !== undefined) {
      checkOptionKeys(options, "write", WRITE_OPTION_KEYS);
      const version = checkVersion(options.ifVersion, true);
      if (version === null) condition = "absent";
      else if (version !== undefined) condition = String(version);
      if (options.ttl !== undefined) ttl = checkTtl(options.ttl, "write");
    }
    return (await this.#write("write", name, value, ttl, condition)).written;
  }

  /**
   * Writes a value only when the name has none: of any number of clients that add one name at
   * once, exactly one wins.
   *
   * @param name Entry name.
   * @param value The value.
   * @param options `ttl`: time to live in ms of the value written (default: the handle's).
   * @returns Whether the value was written.
   * @throws {TypeError} For a bad name, options or value.
   * @throws {RangeError} For a name too long or a value too large.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Take a job once
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "jobs");
   * console.log(await store.add("job:7", "worker-1"), await store.add("job:7", "worker-2")); // true false
   * ```
   */
  async add(name: string, value: unknown, options?: MemallocTtlOptions): Promise<boolean> {
    this.#open("add");
    checkEntryName(name);
    const ttl = ttlOption(options, "add", this.ttl);
    return (await this.#write("add", name, value, ttl, "absent")).written;
  }

  /**
   * Adds `delta` to the number stored under a name, atomically on the server: increments by any
   * number of clients all count. A missing name starts at `initial`. The arithmetic is float64
   * in the server's Lua, on the value's own 8 bytes, so integers stay exact to 2^53 and every
   * result is the one JavaScript would compute.
   *
   * @param name Entry name.
   * @param delta What to add (default 1), a finite number.
   * @param options `initial` (default 0) and `ttl` of an entry this call creates (a live entry
   * keeps its expiry).
   * @returns The new value.
   * @throws {TypeError} For a bad name, a `delta` or `initial` that is not a number, or an entry
   * that holds something else than a number (it is left unchanged).
   * @throws {RangeError} For a `delta` or `initial` that is not finite, or a result that is not.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Count page views from every machine
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "views");
   * console.log(await store.increment("stock", -1, { initial: 5 })); // 4
   * ```
   */
  async increment(
    name: string,
    delta: number = 1,
    options?: MemallocIncrementOptions,
  ): Promise<number> {
    this.#open("increment");
    checkEntryName(name);
    checkFinite(delta, "delta", name);
    let initial = 0;
    let ttl = this.ttl;
    if (options !== undefined) {
      checkOptionKeys(options, "increment", INCREMENT_OPTION_KEYS);
      if (options.initial !== undefined) initial = checkFinite(options.initial, "initial", name);
      if (options.ttl !== undefined) ttl = checkTtl(options.ttl, "increment");
    }
    const reply = await this.#run<[number, number | Buffer, Buffer?]>(
      "increment",
      SCRIPTS.increment,
      [name, float64(delta), float64(initial), String(Math.ceil(ttl))],
    );
    if (reply[0] === -2) {
      throw new TypeError(
        `Cannot increment "${name}": it holds a value that is not a number; write a number or delete it first`,
      );
    }
    if (reply[0] === -3) {
      throw new RangeError(
        `Cannot increment "${name}": the result ${
          decodeNumber(reply[2]!, 0, 8)
        } is not a finite number`,
      );
    }
    return decodeNumber(reply[2]!, 0, 8);
  }

  /**
   * Reads, changes and writes one entry: `change` gets the current value (`undefined` when there
   * is none) and returns the new one (`undefined` deletes the entry). Optimistic: the write is
   * conditional on the version read, and when another client wrote the entry meanwhile,
   * `change` runs again on the new value (up to 32 times). So no update is lost, but `change`
   * may run more than once: keep it free of side effects. It may be async.
   *
   * @param name Entry name.
   * @param change Computes the new value from the current one.
   * @param options `ttl`: time to live in ms of the value written (default: the handle's).
   * @returns The value now stored (`undefined` when there is none).
   * @throws {TypeError} For a bad name, a `change` that is not a function, or a result that
   * cannot be stored; whatever `change` throws (nothing is written then).
   * @throws {MemallocError} `ERR_MEMALLOC_CONFLICT` when other clients kept writing the entry
   * through every try; `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Append to a list every machine shares
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "logs");
   * await store.update<string[]>("log", (list = []) => [...list, "started"]);
   * ```
   */
  async update<T = unknown>(
    name: string,
    change: (current: T | undefined) => T | undefined | Promise<T | undefined>,
    options?: MemallocTtlOptions,
  ): Promise<T | undefined> {
    this.#open("update");
    checkEntryName(name);
    if (typeof change !== "function") {
      throw new TypeError(
        `Cannot update "${name}": change must be a function, got ${typeof change}`,
      );
    }
    const ttl = ttlOption(options, "update", this.ttl);
    for (let attempt = 0; attempt < UPDATE_TRIES; attempt++) {
      const stored = await this.#send<Buffer | null>("update", ["GET", this.#prefix + name]);
      const entry = this.#entry(name, stored);
      const current = entry === undefined
        ? undefined
        : this.#decode<T>(name, entry.kind, entry.data);
      const result = await change(current);
      if (result === undefined) {
        if (entry === undefined) return undefined;
        if (await this.delete(name, { ifVersion: entry.version })) return undefined;
      } else {
        const condition = entry === undefined ? "absent" : String(entry.version);
        if ((await this.#write("update", name, result, ttl, condition)).written) return result;
      }
      await pause(Math.random() * Math.min(2 ** attempt, 50), undefined);
    }
    throw new MemallocError(
      `Cannot update "${name}" in store "${this.name}": other clients wrote it during each of ${UPDATE_TRIES} tries`,
      { code: "ERR_MEMALLOC_CONFLICT", store: this.name },
    );
  }

  /**
   * Reads the value written under a name: one `GET`, no script.
   *
   * @param name Entry name.
   * @returns The value, or `undefined` when there is none (or it has expired).
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE`, `ERR_MEMALLOC_CLOSED`, or
   * `ERR_MEMALLOC_CORRUPT` for a value that does not decode.
   *
   * @example Read a missing name
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * console.log(await store.read("nothing here")); // undefined
   * ```
   */
  async read<T = unknown>(name: string): Promise<T | undefined> {
    this.#open("read");
    checkEntryName(name);
    const stored = await this.#send<Buffer | null>("read", ["GET", this.#prefix + name]);
    const entry = this.#entry(name, stored);
    this.#count(entry !== undefined);
    return entry === undefined ? undefined : this.#decode<T>(name, entry.kind, entry.data);
  }

  /** An entry's stored string, split into its header's fields and its value's bytes. */
  #entry(name: string, stored: Buffer | null): StoredEntry | undefined {
    if (stored === null) return undefined;
    if (stored.length < HEADER_BYTES || stored[0] !== HEADER_FORMAT) {
      throw new MemallocError(
        `Store "${this.name}" is corrupt: the entry "${name}" has no valid header; delete or overwrite it`,
        { code: "ERR_MEMALLOC_CORRUPT", store: this.name },
      );
    }
    return { ...parseHeader(stored), data: stored.subarray(HEADER_BYTES) };
  }

  #count(hit: boolean): void {
    if (hit) this.#hits++;
    else this.#misses++;
    if (this.#hits + this.#misses >= COUNTER_FLUSH) this.#flushCounters();
  }

  /** Adds this client's hits and misses to the store's counters, without waiting. */
  #flushCounters(): Promise<void> {
    const hits = this.#hits, misses = this.#misses;
    if (hits + misses === 0 || this.#client === null) return Promise.resolve();
    this.#hits = this.#misses = 0;
    return this.#client.sendCommand(["HINCRBY", this.#meta, "hits", String(hits)])
      .then(() => this.#client?.sendCommand(["HINCRBY", this.#meta, "misses", String(misses)]))
      .then(() => {}, () => {});
  }

  /**
   * Whether the store holds a value under a name, without reading it.
   *
   * @param name Entry name.
   * @returns `true` when there is one.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Check before a costly computation
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * console.log(await store.has("report")); // false
   * ```
   */
  async has(name: string): Promise<boolean> {
    this.#open("has");
    checkEntryName(name);
    return (await this.#send<number>("has", ["EXISTS", this.#prefix + name])) === 1;
  }

  /**
   * Kind, size, timestamps, version and expiry of an entry, without reading its value.
   *
   * @param name Entry name.
   * @returns The entry's metadata, as `Memalloc.info` gives it, or `undefined`.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example The version a write raises
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.write("a", new Uint8Array([1, 2, 3]));
   * const info = (await store.info("a"))!;
   * console.log(info.kind, info.size); // bytes 3
   * ```
   */
  async info(name: string): Promise<MemallocEntryInfo | undefined> {
    this.#open("info");
    checkEntryName(name);
    const header = await this.#send<Buffer>("info", [
      "GETRANGE",
      this.#prefix + name,
      "0",
      String(HEADER_BYTES - 1),
    ]);
    if (header.length === 0) return undefined;
    return toEntryInfo(this.#entry(name, header)!);
  }

  /**
   * Removes an entry.
   *
   * @param name Entry name.
   * @param options `ifVersion`: delete only that version of the entry.
   * @returns Whether an entry was deleted.
   * @throws {TypeError} For a bad name or bad options.
   * @throws {RangeError} For an `ifVersion` that is not a whole number from 0 to 2^53 - 1.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Delete an entry
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.write("a", 1);
   * console.log(await store.delete("a"), await store.delete("a")); // true false
   * ```
   */
  async delete(name: string, options?: MemallocDeleteOptions): Promise<boolean> {
    this.#open("delete");
    checkEntryName(name);
    let condition = "";
    if (options !== undefined) {
      checkOptionKeys(options, "delete", DELETE_OPTION_KEYS);
      const version = checkVersion(options.ifVersion, false);
      if (version != null) condition = String(version);
    }
    return (await this.#run<number>("delete", SCRIPTS.delete, [name, condition])) === 1;
  }

  /**
   * Removes the entries that have expired, then evicts the oldest-written until usage is at or
   * below the watermark (`autoclean × maxMemory`).
   *
   * @returns The number of entries removed.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Clean a store below its watermark
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * console.log(await store.clean()); // 0
   * ```
   */
  async clean(): Promise<number> {
    return await this.#run<number>("clean", SCRIPTS.clean, []);
  }

  /**
   * Removes every entry of the store (and only of this store), in one script. Counters are
   * kept.
   *
   * @returns The number of entries removed.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Empty a store
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.write("a", 1);
   * console.log(await store.purge()); // 1
   * ```
   */
  async purge(): Promise<number> {
    return await this.#run<number>("purge", SCRIPTS.purge, []);
  }

  /**
   * Figures for the whole store; settles the accounting of expired entries first, and adds
   * this client's read counts to the shared counters.
   *
   * @returns The figures.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example Read the figures
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * const { entries, bytesUsed, capacity } = await store.stats();
   * console.log(entries, bytesUsed <= capacity); // 0 true
   * ```
   */
  async stats(): Promise<RedisStoreStats> {
    const hits = this.#hits, misses = this.#misses;
    this.#hits = this.#misses = 0;
    const flat = await this.#run<Array<Buffer | number>>("stats", SCRIPTS.stats, [
      String(hits),
      String(misses),
    ]);
    const fields = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), Number(flat[i + 1]));
    const get = (key: string) => fields.get(key) ?? 0;
    const capacity = get("maxMemory");
    const autoclean = get("autoclean");
    return {
      name: this.name,
      entries: get("entries"),
      bytesUsed: get("bytes"),
      capacity,
      watermark: Math.floor(capacity * autoclean),
      autoclean,
      writes: get("version"),
      hits: get("hits"),
      misses: get("misses"),
      evictions: get("evictions"),
      deletes: get("deletes"),
      expired: get("expired"),
      createdAt: get("created"),
    };
  }

  /** Walks the store in write order, a chunk per round trip; yields each chunk's raw entries. */
  async *#scan(
    verb: string,
    mode: "keys" | "list" | "entries",
    prefix: string,
  ): AsyncGenerator<Array<Buffer | null>, void, undefined> {
    const width = mode === "keys" ? 1 : 2;
    let after = "-inf";
    for (;;) {
      const reply = await this.#run<Array<Buffer | null>>(verb, SCRIPTS.scan, [
        after,
        String(SCAN_CHUNK * 2),
        prefix,
        mode,
      ]);
      const last = String(reply[0]);
      for (let i = 1; i + width <= reply.length; i += width) yield reply.slice(i, i + width);
      if (last === after) return;
      after = last;
    }
  }

  /**
   * The names in the store, oldest-written first, optionally only those that start with
   * `prefix`, at most `limit`. Read a chunk per round trip: writers go on meanwhile; a name
   * written during the walk is listed once, at its newest place.
   *
   * @param options `prefix` and `limit`, as for `Memalloc.keys`.
   * @returns The names.
   * @throws {TypeError} For bad options.
   * @throws {RangeError} For a limit that is not a whole number from 0 up.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED`.
   *
   * @example List the sessions
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.write("session:1", "a");
   * await store.write("user:1", "b");
   * console.log(await store.keys({ prefix: "session:" })); // [ "session:1" ]
   * ```
   */
  async keys(options?: MemallocListOptions): Promise<string[]> {
    this.#open("keys");
    const { prefix, limit } = checkListOptions(options, "keys");
    const names = new Set<string>();
    if (limit === 0) return [];
    for await (const [name] of this.#scan("keys", "keys", prefix)) {
      const key = utf8.decode(name!);
      names.delete(key);
      names.add(key);
      if (names.size >= limit) break;
    }
    return [...names];
  }

  /**
   * The names and values in the store, oldest-written first, a chunk per round trip.
   *
   * @param options `prefix` and `limit`, as for `Memalloc.entries`.
   * @returns An async iterator of `[name, value]` pairs.
   * @throws {TypeError} For bad options.
   * @throws {RangeError} For a bad limit.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE`, `ERR_MEMALLOC_CLOSED` or
   * `ERR_MEMALLOC_CORRUPT` while iterating.
   *
   * @example Sum the counters
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.increment("hits:a", 2);
   * let total = 0;
   * for await (const [, hits] of store.entries<number>({ prefix: "hits:" })) total += hits;
   * console.log(total); // 2
   * ```
   */
  entries<T = unknown>(options?: MemallocListOptions): AsyncIterableIterator<[string, T]> {
    this.#open("entries");
    const { prefix, limit } = checkListOptions(options, "entries");
    return this.#entries<T>(prefix, limit);
  }

  async *#entries<T>(
    prefix: string,
    limit: number,
  ): AsyncGenerator<[string, T], void, undefined> {
    let count = 0;
    if (limit === 0) return;
    for await (const [name, stored] of this.#scan("entries", "entries", prefix)) {
      const key = utf8.decode(name!);
      const entry = this.#entry(key, stored!)!;
      yield [key, this.#decode<T>(key, entry.kind, entry.data)];
      if (++count >= limit) return;
    }
  }

  /**
   * The names with what {@linkcode RedisStore.info} tells of each, oldest-written first.
   *
   * @param options `prefix` and `limit`.
   * @returns An async iterator of entries' metadata, each with its `name`.
   * @throws {TypeError} For bad options.
   * @throws {RangeError} For a bad limit.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` or `ERR_MEMALLOC_CLOSED` while iterating.
   *
   * @example The largest entry
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * for await (const entry of store.list()) console.log(entry.name, entry.size);
   * ```
   */
  list(options?: MemallocListOptions): AsyncIterableIterator<MemallocListedEntry> {
    this.#open("list");
    const { prefix, limit } = checkListOptions(options, "list");
    return this.#list(prefix, limit);
  }

  async *#list(
    prefix: string,
    limit: number,
  ): AsyncGenerator<MemallocListedEntry, void, undefined> {
    let count = 0;
    if (limit === 0) return;
    for await (const [name, header] of this.#scan("list", "list", prefix)) {
      const key = utf8.decode(name!);
      yield { name: key, ...toEntryInfo(this.#entry(key, header!)!) };
      if (++count >= limit) return;
    }
  }

  /** The subscriber connection, made on the first watch. */
  #subscribe(): Promise<Client> {
    if (this.#subscriber !== null) return this.#subscriber;
    const client = this.#open("watch");
    const notify = (name: string | null) => {
      for (const listener of this.#listeners) listener(name);
    };
    this.#subscriber = (async () => {
      const subscriber = client.duplicate();
      // node-redis reconnects and subscribes again; what was published meanwhile is lost, so
      // the listeners hear "anything may have changed" when the connection drops and when it
      // is back.
      let connected = false;
      subscriber.on("error", () => {
        if (connected) notify(null);
      });
      subscriber.on("ready", () => {
        if (connected) notify(null);
      });
      await subscriber.connect();
      await subscriber.subscribe(this.#channel, (payload: Buffer) => {
        notify(payload.length === 0 ? null : utf8.decode(payload));
      }, true);
      connected = true;
      this.#subscriberClient = subscriber;
      return subscriber;
    })();
    this.#subscriber.catch(() => this.#subscriber = null);
    return this.#subscriber;
  }

  /**
   * Whether this handle's subscriber connection (made by the first `watch` or `subscribe`) is
   * connected now, so that changes published on the store's channel are heard.
   *
   * @example Before and after a subscription
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * console.log(store.listening); // false
   * await store.subscribe(() => {});
   * console.log(store.listening); // true
   * ```
   */
  get listening(): boolean {
    return this.#client !== null && this.#subscriberClient?.isReady === true;
  }

  /**
   * Calls `listener` with the name of each entry that any client writes, deletes or evicts in
   * this store, as the server-side scripts publish them on the store's channel (expiries are
   * not announced: each entry's `expires` tells when), and with `null` when any entry may have
   * changed: after a purge, and when the subscription's connection dropped or came back (what
   * was published meanwhile was not heard). One subscriber connection per store handle serves
   * every listener and every watch. What `NearCache` builds its invalidation on.
   *
   * @param listener Called with a name, or `null` for every name.
   * @returns When the subscription is in place: a function that removes the listener.
   * @throws {MemallocError} `ERR_MEMALLOC_REMOTE` when the subscriber cannot connect;
   * `ERR_MEMALLOC_CLOSED`.
   *
   * @example Log every change
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * const stop = await store.subscribe((name) => console.log("changed:", name ?? "everything"));
   * await store.write("a", 1); // changed: a
   * stop();
   * ```
   */
  async subscribe(listener: (name: string | null) => void): Promise<() => void> {
    this.#open("subscribe");
    if (typeof listener !== "function") {
      throw new TypeError(`subscribe() takes a function, got ${describe(listener)}`);
    }
    // A listener of its own, so that one function subscribed twice is removed once per call.
    const own = (name: string | null) => listener(name);
    this.#listeners.add(own);
    try {
      await this.#subscribe();
    } catch (error) {
      this.#listeners.delete(own);
      throw this.#remote("subscribe", error);
    }
    return () => {
      this.#listeners.delete(own);
    };
  }

  /**
   * Watches names for changes: the first item is their current state; then a new item comes
   * each time any of them is written, deleted, evicted or purged by any client (the scripts
   * publish each change on the store's pub/sub channel: no server configuration needed), or
   * expires (each watch re-reads at the soonest expiry of what it holds). Changes in between are
   * coalesced. It ends on `break`, when `signal` aborts, and on `close()`.
   *
   * @param names The names to watch.
   * @param options `signal`: an `AbortSignal` that ends the watch.
   * @returns An async iterator of the names' states, in the order of `names`.
   * @throws {TypeError} For names that are not an array of valid names, or a bad signal.
   * @throws {MemallocError} `ERR_MEMALLOC_CLOSED`; `ERR_MEMALLOC_REMOTE` while iterating.
   *
   * @example Wait for a value another machine writes
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * await using store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * setTimeout(() => store.write("ready", "yes"), 20);
   * for await (const [ready] of store.watch(["ready"])) {
   *   if (ready!.value !== undefined) break;
   * }
   * ```
   */
  watch<T = unknown>(
    names: readonly string[],
    options?: MemallocWatchOptions,
  ): AsyncIterableIterator<MemallocWatchEntry<T>[]> {
    this.#open("watch");
    if (!Array.isArray(names)) {
      throw new TypeError(`watch() takes an array of names, got ${describe(names)}`);
    }
    const list = [...names];
    for (const name of list) checkEntryName(name);
    const signal = checkWatchSignal(options);
    return this.#watch<T>(list, signal);
  }

  async *#watch<T>(
    names: string[],
    signal: MemallocAbortSignal | undefined,
  ): AsyncGenerator<MemallocWatchEntry<T>[], void, undefined> {
    const watched = new Set(names);
    let dirty = false;
    let wake: (() => void) | undefined;
    const listener = (name: string | null) => {
      if (name !== null && !watched.has(name)) return;
      dirty = true;
      wake?.();
    };
    const onAbort = () => wake?.();
    this.#listeners.add(listener);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.#subscribe().catch((error) => {
        throw this.#remote("watch", error);
      });
      let state = await this.#states<T>(names);
      yield state.entries;
      for (;;) {
        if (!dirty) {
          const wait = Math.max(0, Math.min(state.nextExpiry - Date.now(), 1_000));
          await new Promise<void>((resolve) => {
            wake = resolve;
            // Wakes at the soonest expiry, and every second to notice a dropped subscription.
            setTimeout(resolve, wait + 1);
          });
          wake = undefined;
        }
        if (signal?.aborted || this.#client === null) return;
        dirty = false;
        const next = await this.#states<T>(names);
        if (next.entries.some((entry, i) => entry.version !== state.entries[i]!.version)) {
          state = next;
          yield state.entries;
        } else {
          state = next;
        }
      }
    } finally {
      this.#listeners.delete(listener);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The names' values and versions, in one round trip (a pipeline of GETs). */
  async #states<T>(
    names: string[],
  ): Promise<{ entries: MemallocWatchEntry<T>[]; nextExpiry: number }> {
    const replies = await Promise.all(
      names.map((name) => this.#send<Buffer | null>("watch", ["GET", this.#prefix + name])),
    );
    let nextExpiry = Infinity;
    const entries = names.map((name, i): MemallocWatchEntry<T> => {
      const entry = this.#entry(name, replies[i]!);
      if (entry === undefined) return { name, value: undefined, version: null };
      if (entry.expires > 0 && entry.expires < nextExpiry) nextExpiry = entry.expires;
      return {
        name,
        value: this.#decode<T>(name, entry.kind, entry.data),
        version: entry.version,
      };
    });
    return { entries, nextExpiry };
  }

  /**
   * Closes the connections (after the calls in flight have their replies). The entries stay on
   * the server. Safe to call twice; later calls throw `ERR_MEMALLOC_CLOSED`, and watches end.
   *
   * @returns When the connections are closed.
   *
   * @example Close twice
   * ```ts ignore
   * import { RedisStore } from "@memalloc/memalloc/redis";
   *
   * const store = await RedisStore.connect("redis://127.0.0.1:6379", "docs");
   * await store.close();
   * await store.close();
   * ```
   */
  async close(): Promise<void> {
    const client = this.#client;
    if (client === null) return;
    await this.#flushCounters();
    this.#client = null;
    for (const listener of this.#listeners) listener(null);
    const subscriber = this.#subscriber;
    this.#subscriber = null;
    this.#subscriberClient = null;
    await Promise.all([
      this.#owned ? closeClient(client) : undefined,
      subscriber?.then(closeClient, () => {}),
    ]);
  }

  /** Same as {@linkcode RedisStore.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
