/**
 * memalloc's `NearCache` (redis/near_cache.ts) as a benchmark peer: a local shared-memory store
 * of copies in front of a `RedisStore`. Reads of a name it holds are local; writes and deletes go
 * to the server first. Asynchronous ({@linkcode AsyncPeer}), since a miss is a round trip.
 *
 * @module
 */
import process from "node:process";
import { Memalloc } from "../../memalloc.ts";
import { NearCache } from "../../redis/near_cache.ts";
import { RedisStore } from "../../redis/store.ts";
import { serverOrUrl } from "./redis.ts";
import type { AsyncPeer, PeerFactoryOptions } from "./types.ts";
import { errorMessage, packageVersion, warnUnavailable } from "./types.ts";

/** Options of {@linkcode openNearCachePeer}. */
export interface NearCachePeerOptions extends PeerFactoryOptions {
  /** A running server (left running on close). Default: a private redis-server, stopped on close. */
  url?: string;
}

/** A NearCache peer, with the NearCache itself for benchmarks that call `peek`. */
export interface NearCachePeer extends AsyncPeer {
  readonly cache: NearCache;
}

/**
 * Opens a NearCache peer: a RedisStore of its own name, and a local store of its own, both
 * removed on close.
 *
 * @param options Server, and what to do when Redis is unavailable.
 * @returns The peer, or undefined when redis-server is not installed.
 *
 * @example Write and read
 * ```ts ignore
 * import { openNearCachePeer } from "./near_cache.ts";
 *
 * const peer = await openNearCachePeer();
 * if (peer) {
 *   await peer.setString("greeting", "hello");
 *   console.log(await peer.getString("greeting")); // hello
 *   await peer.close();
 * }
 * ```
 */
export async function openNearCachePeer(
  options: NearCachePeerOptions = {},
): Promise<NearCachePeer | undefined> {
  const name = "NearCache (memalloc + RedisStore)";
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  const target = await serverOrUrl(options.url, name, onUnavailable);
  if (target === undefined) return undefined;
  const { server, url } = target;
  const id = `bench-near-${process.pid}-${Date.now()}`;
  let remote: RedisStore;
  let cache: NearCache;
  try {
    remote = await RedisStore.connect(url, id, { maxMemory: 1 << 30 });
    cache = await NearCache.open(id, remote, { maxMemory: 64 << 20 });
  } catch (error) {
    await server?.stop();
    onUnavailable(name, errorMessage(error));
    return undefined;
  }
  let closed = false;
  return {
    name,
    cache,
    description: `memalloc NearCache (64 MiB local store) in front of a RedisStore on ${
      server ? `redis-server ${server.version}` : url
    }, node-redis ${packageVersion("redis")}`,
    sharesAcrossProcesses: true,
    location: url,
    pipelines: true,
    getBytes: (key) => cache.get<Uint8Array>(key),
    getString: (key) => cache.get<string>(key),
    async setBytes(key, value) {
      await cache.write(key, value);
    },
    async setString(key, value) {
      await cache.write(key, value);
    },
    delete: (key) => cache.delete(key),
    increment: (key) => cache.increment(key),
    async close() {
      if (closed) return;
      closed = true;
      try {
        cache.close();
        Memalloc.unlink(id);
        Memalloc.unlink(`${id}.near`);
        await remote.purge();
        await remote.close();
      } finally {
        await server?.stop();
      }
    },
  };
}
