/**
 * `NearCache`: a machine's shared-memory copy of the hot entries of a {@linkcode RedisStore},
 * which stays the truth.
 *
 * - Hits are local: `peek` is a `Memalloc` read of a store that every process of the machine
 *   shares (plus a look at the leader's lease), `get` falls back to the server and keeps what
 *   it fetched.
 * - One process per machine, the leader, listens to the store's change channel and applies each
 *   invalidation once to the shared store; the others see its work. The leader holds a lease in
 *   a small control store beside the copies (`<localName>.near`), renewed every quarter of it;
 *   when it dies or stalls, another process takes over within a lease, and drops every copy
 *   first, since changes may have gone unheard meanwhile. Copies are served and kept only while
 *   a leader listens: it marks that with a second entry (`live`), written once it listens and
 *   renewed just before its lease, so that it expires first. A leader killed without closing
 *   leaves it for up to one lease, during which the copies are not invalidated.
 * - When the leader's subscription drops, it drops every copy and gives up the lease until it
 *   is back.
 * - An invalidation that arrives while a fetch is in flight is not lost: before it applies an
 *   invalidation, the leader counts it in the control store, in one of 256 counters chosen by a
 *   hash of the name (a flush counts in an epoch counter), and a fetch keeps its value only when
 *   its name's counter and the epoch are what they were when it started (checked under the copy
 *   store's lock). A write elsewhere to a name of the same counter makes a fetch in flight drop
 *   its value too: a miss more, never a stale copy.
 * - Every copy has a bounded lifetime (`ttl`, default 60 s).
 *
 * @module
 */
import { MemallocError } from "../errors.ts";
import { Memalloc, type MemallocStats } from "../memalloc.ts";
import { checkEntryName, checkOptionKeys, checkTtl, describe } from "./_checks.ts";
import type { RedisStore } from "./store.ts";

/** Options for {@linkcode NearCache.open}. */
export interface NearCacheOptions {
  /** Size of the local store in bytes (default 50 MiB), when this call creates it. */
  maxMemory?: number;
  /** Lifetime of every local copy in ms (default 60,000); from 1 up. */
  ttl?: number;
  /** The leader's lease in ms (default 1,000): how long a dead leader can leave copies unwatched. */
  lease?: number;
}

/** Figures of a near cache, from this process and from the machine's shared stores. */
export interface NearCacheStats {
  /** Reads this process answered from local memory. */
  hits: number;
  /** Reads this process sent to the server. */
  misses: number;
  /** Invalidations the machine's leaders applied (each once), flushes included. */
  invalidations: number;
  /** Whether this process is the machine's leader now. */
  leader: boolean;
  /**
   * Whether copies are served and kept: a leader (this process or another) listens to the
   * store's changes. Between a leader's death and the next one's subscription it is `false`, and
   * every read goes to the server.
   */
  watched: boolean;
  /** The local store's figures. */
  local: MemallocStats;
}

const OPTION_KEYS = new Set(["maxMemory", "ttl", "lease"]);
/** The election's lease: which process leads. */
const LEADER = "leader";
/**
 * Present while a leader listens to the channel (written after its first flush, renewed just
 * before its lease so that it expires first): copies are served and kept only then.
 */
const LIVE = "live";
/** The count of invalidations applied, for stats. */
const APPLIED = "invalidations";
/** Counts flushes. */
const EPOCH = "epoch";
/** How many per-name invalidation counters there are. */
const COUNTERS = 256;

/** The control entry that counts the invalidations of `name` (FNV-1a of its UTF-16 units). */
function counterOf(name: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  }
  return `n${(hash >>> 0) % COUNTERS}`;
}
/** Thrown inside a local update to leave the entry as it is. */
const STALE = Symbol("stale");

/**
 * A machine's shared-memory near cache in front of a {@linkcode RedisStore}.
 *
 * @example Reads from local memory, writes to the server first
 * ```ts ignore
 * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
 *
 * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
 * const cache = await NearCache.open("catalog-near", remote, { ttl: 30_000 });
 * await cache.write("product:1", { name: "Lamp", price: 30 });
 * console.log(await cache.get("product:1")); // from Redis once, then from shared memory
 * console.log(cache.peek("product:1")); // { name: "Lamp", price: 30 }
 * cache.close();
 * await remote.close();
 * ```
 */
export class NearCache {
  /** The store on the server, the truth. */
  readonly remote: RedisStore;
  /** Lifetime of every local copy, in ms. */
  readonly ttl: number;
  /** The leader's lease, in ms. */
  readonly lease: number;
  readonly #local: Memalloc;
  readonly #control: Memalloc;
  #leader: { version: number; unsubscribe: () => void; live: boolean } | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #electing: Promise<void> | null = null;
  #closed = false;
  #hits = 0;
  #misses = 0;
  /** What {@linkcode NearCache.#watched} last found: the control store's change count then, */
  #liveChanges = -1;
  /** and until when the `live` entry it found lasts (0: it found none). */
  #liveUntil = 0;

  private constructor(
    remote: RedisStore,
    local: Memalloc,
    control: Memalloc,
    ttl: number,
    lease: number,
  ) {
    this.remote = remote;
    this.#local = local;
    this.#control = control;
    this.ttl = ttl;
    this.lease = lease;
  }

  /**
   * Opens the near cache of this machine called `localName` in front of `remote`: the local
   * store `localName` holds the copies, `<localName>.near` the leader's lease and the count of
   * invalidations. Every process of the machine that opens the same name shares both; the first
   * becomes the leader.
   *
   * @param localName The local store's name (as for `Memalloc.open`).
   * @param remote The store on the server; the near cache does not close it.
   * @param options `maxMemory` of the local store, `ttl` of the copies, the leader's `lease`.
   * @returns The near cache; close it with {@linkcode NearCache.close}.
   * @throws {TypeError} For bad arguments.
   * @throws {RangeError} For options out of range.
   * @throws {MemallocError} When a local store cannot be opened.
   *
   * @example Open and close
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * await remote.close();
   * ```
   */
  static async open(
    localName: string,
    remote: RedisStore,
    options?: NearCacheOptions,
  ): Promise<NearCache> {
    if (typeof remote !== "object" || remote === null || typeof remote.read !== "function") {
      throw new TypeError(`NearCache.open() needs a RedisStore, got ${describe(remote)}`);
    }
    let ttl = 60_000;
    let lease = 1_000;
    let maxMemory: number | undefined;
    if (options !== undefined) {
      checkOptionKeys(options, "NearCache.open", OPTION_KEYS);
      if (options.ttl !== undefined) ttl = checkTtl(options.ttl, "NearCache.open");
      if (options.lease !== undefined) {
        lease = options.lease;
        if (typeof lease !== "number") {
          throw new TypeError(
            `The lease of NearCache.open() must be a number of ms, got ${describe(lease)}`,
          );
        }
      }
      maxMemory = options.maxMemory;
    }
    if (ttl < 1) {
      throw new RangeError(
        `The ttl of NearCache.open() must be 1 ms or more: copies have a bounded lifetime, got ${ttl}`,
      );
    }
    if (!(lease >= 20) || !Number.isFinite(lease)) {
      throw new RangeError(`The lease of NearCache.open() must be 20 ms or more, got ${lease}`);
    }
    const local = Memalloc.open(localName, maxMemory === undefined ? undefined : { maxMemory });
    let control: Memalloc;
    try {
      control = Memalloc.open(`${localName}.near`, { maxMemory: 64 * 1024 });
    } catch (error) {
      local.close();
      throw error;
    }
    const cache = new NearCache(remote, local, control, ttl, lease);
    await cache.#elect();
    cache.#timer = setInterval(() => void cache.#elect(), Math.max(5, lease / 4));
    // The timer must not keep the process alive on its own.
    (cache.#timer as { unref?: () => void }).unref?.();
    const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
    if (typeof cache.#timer === "number") deno?.unrefTimer?.(cache.#timer);
    return cache;
  }

  /** Takes or renews the lease; the leader subscribes to the store's changes. */
  #elect(): Promise<void> {
    this.#electing ??= this.#electOnce().finally(() => this.#electing = null);
    return this.#electing;
  }

  async #electOnce(): Promise<void> {
    if (this.#closed) return;
    const control = this.#control;
    const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
    const leader = this.#leader;
    if (leader !== null) {
      if (control.info(LEADER)?.version === leader.version) {
        if (leader.live) control.write(LIVE, pid, { ttl: this.lease });
        if (control.write(LEADER, pid, { ifVersion: leader.version, ttl: this.lease })) {
          leader.version = control.info(LEADER)!.version;
          return;
        }
      }
      // Stalled past the lease: another process leads now.
      this.#resign(false);
    }
    if (!control.add(LEADER, pid, { ttl: this.lease })) return;
    const version = control.info(LEADER)!.version;
    const mine = { version, unsubscribe: () => {}, live: false };
    this.#leader = mine;
    // Copies made while nobody listened may be stale: drop them before listening (fetches in
    // flight drop theirs), and again once listening, for what came in between.
    this.#flush();
    try {
      mine.unsubscribe = await this.remote.subscribe((name) => this.#invalidate(name));
    } catch {
      if (this.#leader === mine) this.#resign(true);
      return;
    }
    if (this.#leader !== mine) return;
    if (!this.remote.listening) {
      // The subscriber connection is down (it reconnects by itself): lead once it is back.
      this.#resign(true);
      return;
    }
    this.#flush();
    mine.live = true;
    control.write(LIVE, pid, { ttl: this.lease });
  }

  /** Gives up the lease (deleting it when `release`) and stops listening. */
  #resign(release: boolean): void {
    const leader = this.#leader;
    if (leader === null) return;
    this.#leader = null;
    leader.unsubscribe();
    if (release) {
      if (leader.live) this.#control.delete(LIVE);
      this.#control.delete(LEADER, { ifVersion: leader.version });
    }
  }

  /** Applies one invalidation from the channel: a name, or `null` for everything. */
  #invalidate(name: string | null): void {
    if (this.#closed || this.#leader === null) return;
    if (name !== null) {
      this.#control.increment(counterOf(name));
      this.#control.increment(APPLIED);
      this.#local.delete(name);
      return;
    }
    this.#flush();
    // The subscription dropped: what is published now goes unheard, so no copy may be served
    // or kept until a leader listens again (the election retries every quarter lease).
    if (!this.remote.listening) this.#resign(true);
  }

  /** Drops every copy, counted as an invalidation first (so that fetches in flight drop theirs). */
  #flush(): void {
    this.#control.increment(EPOCH);
    this.#control.increment(APPLIED);
    this.#local.purge();
  }

  /**
   * Whether a leader listens, so that the copies are being kept right: whether the `live` entry
   * is there. Every hit asks, so the answer is kept with the control store's change count and
   * the entry's expiry time, and looked up again only once either moved on: a few loads and a
   * clock read, where a lookup of the entry costs a hit about a third of its time. (A delete of
   * the entry moves the count before its stripe of the read seqlock is even again, so a lookup
   * that saw the count the delete left also sees the delete.)
   */
  #watched(): boolean {
    const control = this.#control;
    const changes = control.changeCount();
    if (changes === this.#liveChanges && Date.now() < this.#liveUntil) return true;
    const expires = control.info(LIVE)?.expires;
    this.#liveChanges = changes;
    // The entry always has a TTL (the lease); without one, trust it until the next change.
    this.#liveUntil = expires === undefined ? 0 : expires ?? Infinity;
    return expires !== undefined;
  }

  #check(verb: string): void {
    if (this.#closed) {
      throw new MemallocError(`Cannot ${verb}: the near cache is closed`, {
        code: "ERR_MEMALLOC_CLOSED",
        store: this.#local.name,
      });
    }
  }

  /**
   * The local copy of an entry, synchronously, or `undefined` when there is none (or no leader
   * holds the lease, so that copies may be stale).
   *
   * @param name Entry name.
   * @returns The value of the local copy.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} `ERR_MEMALLOC_CLOSED`.
   *
   * @example Local only
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * console.log(cache.peek("never fetched")); // undefined
   * await remote.close();
   * ```
   */
  peek<T = unknown>(name: string): T | undefined {
    this.#check("peek");
    const value = this.#local.read<T>(name);
    if (value === undefined || !this.#watched()) return undefined;
    return value;
  }

  /**
   * The value of an entry: the local copy when there is one, else the server's, kept as a local
   * copy for `ttl` ms (unless an invalidation came while it was fetched).
   *
   * @param name Entry name.
   * @returns The value, or `undefined` when the server has none.
   * @throws {TypeError} For a bad name.
   * @throws {MemallocError} `ERR_MEMALLOC_CLOSED`; the server's errors (`ERR_MEMALLOC_REMOTE`).
   *
   * @example Fetch once
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * await remote.write("a", 1);
   * console.log(await cache.get("a"), cache.peek("a")); // 1 1
   * await remote.close();
   * ```
   */
  async get<T = unknown>(name: string): Promise<T | undefined> {
    this.#check("get");
    const local = this.peek<T>(name);
    if (local !== undefined) {
      this.#hits++;
      return local;
    }
    this.#misses++;
    const control = this.#control;
    const counter = counterOf(name);
    const count = control.read<number>(counter) ?? 0;
    const epoch = control.read<number>(EPOCH) ?? 0;
    const watched = this.#watched();
    const value = await this.remote.read<T>(name);
    if (value === undefined || !watched || this.#closed) return value;
    try {
      this.#local.update(name, () => {
        // Under the copy store's lock: a leader counts an invalidation before it applies it,
        // so unchanged counts mean none of this name came since the fetch began.
        if (
          (control.read<number>(counter) ?? 0) !== count ||
          (control.read<number>(EPOCH) ?? 0) !== epoch || !control.has(LIVE)
        ) {
          throw STALE;
        }
        return value;
      }, { ttl: this.ttl });
    } catch (error) {
      if (error !== STALE) throw error;
    }
    return value;
  }

  /**
   * Writes to the server first, then drops the local copy (the write's invalidation reaches
   * every machine, this one included; the next `get` fetches the new value).
   *
   * @param name Entry name.
   * @param value The value.
   * @param options As for {@linkcode RedisStore.write}.
   * @returns Whether the value was written.
   * @throws {TypeError} For bad arguments; {@linkcode RedisStore.write}'s errors.
   *
   * @example Write through
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * await cache.write("a", "new");
   * console.log(await cache.get("a")); // new
   * await remote.close();
   * ```
   */
  async write(
    name: string,
    value: unknown,
    options?: Parameters<RedisStore["write"]>[2],
  ): Promise<boolean> {
    this.#check("write");
    const written = await this.remote.write(name, value, options);
    if (written) this.#local.delete(name);
    return written;
  }

  /**
   * Deletes on the server first, then the local copy.
   *
   * @param name Entry name.
   * @param options As for {@linkcode RedisStore.delete}.
   * @returns Whether the server had an entry to delete.
   * @throws {TypeError} For bad arguments; {@linkcode RedisStore.delete}'s errors.
   *
   * @example Delete through
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * console.log(await cache.delete("a")); // true or false
   * await remote.close();
   * ```
   */
  async delete(name: string, options?: Parameters<RedisStore["delete"]>[1]): Promise<boolean> {
    this.#check("delete");
    const deleted = await this.remote.delete(name, options);
    this.#local.delete(name);
    return deleted;
  }

  /**
   * Increments on the server first, then drops the local copy.
   *
   * @param name Entry name.
   * @param delta What to add (default 1).
   * @param options As for {@linkcode RedisStore.increment}.
   * @returns The new value.
   * @throws {TypeError} For bad arguments; {@linkcode RedisStore.increment}'s errors.
   *
   * @example Count through
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * console.log(await cache.increment("views")); // 1, 2, ...
   * await remote.close();
   * ```
   */
  async increment(
    name: string,
    delta?: number,
    options?: Parameters<RedisStore["increment"]>[2],
  ): Promise<number> {
    this.#check("increment");
    checkEntryName(name);
    const value = await this.remote.increment(name, delta, options);
    this.#local.delete(name);
    return value;
  }

  /**
   * This process's hits and misses, the machine's count of applied invalidations, whether this
   * process leads, and the local store's figures.
   *
   * @returns The figures.
   * @throws {MemallocError} `ERR_MEMALLOC_CLOSED`.
   *
   * @example Hit ratio
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * using cache = await NearCache.open("catalog-near", remote);
   * const { hits, misses } = cache.stats();
   * console.log(hits / Math.max(1, hits + misses));
   * await remote.close();
   * ```
   */
  stats(): NearCacheStats {
    this.#check("stats");
    return {
      hits: this.#hits,
      misses: this.#misses,
      invalidations: this.#control.read<number>(APPLIED) ?? 0,
      leader: this.#leader !== null,
      watched: this.#watched(),
      local: this.#local.stats(),
    };
  }

  /**
   * Stops this process's part: gives up the lease if it holds it (another process takes over
   * within a quarter lease), and closes the local stores (the copies stay for the other
   * processes). The remote store stays open. Safe to call twice.
   *
   * @example Close twice
   * ```ts ignore
   * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
   *
   * const remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
   * const cache = await NearCache.open("catalog-near", remote);
   * cache.close();
   * cache.close();
   * await remote.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#resign(true);
    this.#local.close();
    this.#control.close();
  }

  /** Same as {@linkcode NearCache.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
