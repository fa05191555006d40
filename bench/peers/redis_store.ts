/**
 * memalloc's `RedisStore` (redis/store.ts) as a benchmark peer: the same Redis server as the
 * plain Redis peer, with memalloc's semantics on top (one Lua script per write that records the
 * write order, the size and the version and evicts past `maxMemory`; reads are one `GET`).
 * Asynchronous ({@linkcode AsyncPeer}); node-redis on every runtime.
 *
 * @module
 */
import process from "node:process";
import { RedisStore } from "../../redis/store.ts";
import { serverOrUrl } from "./redis.ts";
import type { AsyncPeer, PeerFactoryOptions } from "./types.ts";
import { errorMessage, packageVersion, warnUnavailable } from "./types.ts";

/** Options of {@linkcode openRedisStorePeer}. */
export interface RedisStorePeerOptions extends PeerFactoryOptions {
  /** A running server (left running on close). Default: a private redis-server, stopped on close. */
  url?: string;
  /** The store's maxMemory (default 1 GiB: no eviction unless a benchmark asks for it). */
  maxMemory?: number;
}

/**
 * Opens a RedisStore peer on a store of its own name, purged on close.
 *
 * @param options Server, store size and what to do when Redis is unavailable.
 * @returns The peer, or undefined when redis-server is not installed.
 *
 * @example Write and read
 * ```ts ignore
 * import { openRedisStorePeer } from "./redis_store.ts";
 *
 * const peer = await openRedisStorePeer();
 * if (peer) {
 *   await peer.setString("greeting", "hello");
 *   console.log(await peer.getString("greeting")); // hello
 *   await peer.close();
 * }
 * ```
 */
export async function openRedisStorePeer(
  options: RedisStorePeerOptions = {},
): Promise<AsyncPeer | undefined> {
  const name = "RedisStore (node-redis)";
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  const target = await serverOrUrl(options.url, name, onUnavailable);
  if (target === undefined) return undefined;
  const { server, url } = target;
  let store: RedisStore;
  try {
    store = await RedisStore.connect(url, `bench-${process.pid}-${Date.now()}`, {
      maxMemory: options.maxMemory ?? 1 << 30,
    });
  } catch (error) {
    await server?.stop();
    onUnavailable(name, `cannot connect to ${url} (${errorMessage(error)})`);
    return undefined;
  }
  let closed = false;
  return {
    name,
    description: `memalloc RedisStore on ${
      server ? `redis-server ${server.version}` : url
    }, node-redis ${packageVersion("redis")}, one connection`,
    sharesAcrossProcesses: true,
    location: url,
    pipelines: true,
    async getBytes(key) {
      return await store.read<Uint8Array>(key);
    },
    async getString(key) {
      return await store.read<string>(key);
    },
    async setBytes(key, value) {
      await store.write(key, value);
    },
    async setString(key, value) {
      await store.write(key, value);
    },
    delete(key) {
      return store.delete(key);
    },
    increment(key) {
      return store.increment(key);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await store.purge();
        await store.close();
      } finally {
        await server?.stop();
      }
    },
  };
}
