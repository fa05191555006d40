/**
 * Opens every benchmark peer available on this runtime and machine (memalloc is added by the
 * benchmarks themselves), and closes them again.
 *
 * @example Open, use, close
 * ```ts ignore
 * import { openPeers } from "./index.ts";
 *
 * await using peers = await openPeers();
 * for (const skip of peers.skipped) console.log(`skipped ${skip.name}: ${skip.reason}`);
 * for (const peer of peers.sync) peer.setString("k", "v");
 * for (const peer of peers.async) await peer.setString("k", "v");
 * ```
 *
 * @module
 */
import { runtime } from "../../ffi/runtime.ts";
import { openDenoKvPeer } from "./denokv.ts";
import { openLmdbPeer } from "./lmdb.ts";
import { openMapPeer } from "./map.ts";
import { openRedisPeer, type RedisClientKind } from "./redis.ts";
import { openRedisStorePeer } from "./redis_store.ts";
import { openNearCachePeer } from "./near_cache.ts";
import { openSqlitePeer } from "./sqlite.ts";
import type { AsyncPeer, Peer } from "./types.ts";

export type { AsyncPeer, Peer, PeerInfo } from "./types.ts";
export { openDenoKvPeer } from "./denokv.ts";
export { openLmdbPeer } from "./lmdb.ts";
export { openMapPeer } from "./map.ts";
export { openRedisPeer, type RedisClientKind, startRedisServer } from "./redis.ts";
export { openRedisStorePeer } from "./redis_store.ts";
export { openNearCachePeer } from "./near_cache.ts";
export { openSqlitePeer } from "./sqlite.ts";

/** The peers {@linkcode openPeers} can open. */
export type PeerKind =
  | "map"
  | "lmdb"
  | "sqlite"
  | "redis"
  | "redis-store"
  | "near-cache"
  | "denokv";

/** Options of {@linkcode openPeers}. */
export interface OpenPeersOptions {
  /** Which peers to open. Default: all of them. */
  only?: readonly PeerKind[];
  /**
   * Redis clients to open, one peer (and one private redis-server) each. Default: Bun's
   * `RedisClient` and node-redis under Bun, node-redis under Deno.
   */
  redisClients?: readonly RedisClientKind[];
}

/** A peer that could not be opened here, and why. */
export interface SkippedPeer {
  readonly name: string;
  readonly reason: string;
}

/** The peers opened by {@linkcode openPeers}. */
export interface PeerSet {
  /** Synchronous peers, in the order Map, lmdb-js, SQLite. */
  readonly sync: Peer[];
  /** Asynchronous peers (Redis, one per client library; memalloc's RedisStore; Deno KV under Deno). */
  readonly async: AsyncPeer[];
  /** Peers that are not available here, with the reason, to print with the results. */
  readonly skipped: SkippedPeer[];
  /** Closes every peer (stopping servers, removing scratch directories); safe to call twice. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Opens every available peer. A peer that cannot run here (package missing, redis-server not
 * installed, runtime unsupported) is listed in `skipped` with the reason instead.
 *
 * @param options Which peers and Redis clients to open.
 * @returns The open peers; close them with `close()`.
 */
export async function openPeers(options: OpenPeersOptions = {}): Promise<PeerSet> {
  const wanted = (kind: PeerKind) => options.only === undefined || options.only.includes(kind);
  const sync: Peer[] = [];
  const async: AsyncPeer[] = [];
  const skipped: SkippedPeer[] = [];
  const onUnavailable = (name: string, reason: string) => skipped.push({ name, reason });
  const set: PeerSet = {
    sync,
    async,
    skipped,
    close: () => closePeers(sync, async),
    [Symbol.asyncDispose]: () => closePeers(sync, async),
  };
  try {
    if (wanted("map")) sync.push(openMapPeer());
    if (wanted("lmdb")) {
      const peer = await openLmdbPeer({ onUnavailable });
      if (peer) sync.push(peer);
    }
    if (wanted("sqlite")) {
      const peer = await openSqlitePeer({ onUnavailable });
      if (peer) sync.push(peer);
    }
    if (wanted("redis")) {
      const clients = options.redisClients ??
        (runtime === "bun" ? ["bun", "node-redis"] as const : ["node-redis"] as const);
      for (const client of clients) {
        const peer = await openRedisPeer({ client, onUnavailable });
        if (peer) async.push(peer);
      }
    }
    // After the plain Redis peers, which the memory figures take as "Redis".
    if (wanted("redis-store")) {
      const peer = await openRedisStorePeer({ onUnavailable });
      if (peer) async.push(peer);
    }
    if (wanted("near-cache")) {
      const peer = await openNearCachePeer({ onUnavailable });
      if (peer) async.push(peer);
    }
    if (wanted("denokv") && runtime === "deno") {
      const peer = await openDenoKvPeer({ onUnavailable });
      if (peer) async.push(peer);
    }
  } catch (error) {
    await set.close();
    throw error;
  }
  return set;
}

/**
 * Closes peers, all of them even when some fail; the first failure is rethrown at the end.
 * Closed peers are removed from the arrays, so a second call does nothing.
 *
 * @param sync Synchronous peers.
 * @param async Asynchronous peers.
 * @returns When every peer is closed.
 * @throws {Error} The first error a peer's `close()` threw.
 */
export async function closePeers(sync: Peer[], async: AsyncPeer[] = []): Promise<void> {
  const failures: unknown[] = [];
  for (const peer of [...sync.splice(0), ...async.splice(0)]) {
    try {
      await peer.close();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}
