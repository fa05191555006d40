/**
 * memalloc beyond one machine: {@linkcode RedisStore}, the operations of `Memalloc` on a Redis 7
 * or Valkey 8 server, and {@linkcode NearCache}, a machine's shared-memory copies of a
 * RedisStore's hot entries. Needs the npm package `redis` (node-redis), an optional peer
 * dependency that only this entry point loads.
 *
 * @example Write on the server, read from shared memory
 * ```ts ignore
 * import { NearCache, RedisStore } from "@memalloc/memalloc/redis";
 *
 * await using remote = await RedisStore.connect("redis://127.0.0.1:6379", "catalog");
 * using cache = await NearCache.open("catalog-near", remote);
 * await cache.write("product:1", { name: "Lamp" });
 * console.log(await cache.get("product:1")); // { name: "Lamp" }
 * ```
 *
 * @module
 */
export * from "./store.ts";
export { NearCache, type NearCacheOptions, type NearCacheStats } from "./near_cache.ts";
