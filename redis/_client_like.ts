/**
 * The clients a caller may hand {@linkcode RedisStore.connect} instead of a URL, as the package's
 * types declare them: in a file of their own, which needs no Node.js types (redis/_client.ts
 * speaks of `Buffer`, which a consumer without `@types/node` cannot resolve).
 *
 * @module
 */

/**
 * A node-redis client that {@linkcode RedisStore.connect} can use instead of a URL: what
 * `createClient()` returns, connected.
 */
export interface RedisClientLike {
  /** Whether it is connected. */
  readonly isReady: boolean;
  /** Its options, for messages (the URL, without credentials). */
  readonly options?: { url?: string } | undefined;
  /** node-redis' proxy of the client with other reply types. */
  withTypeMapping(mapping: Record<number, unknown>): unknown;
  /** Sends a command. */
  sendCommand(args: ReadonlyArray<string | Uint8Array>): Promise<unknown>;
  /** A new client with the same options. */
  duplicate(): unknown;
}

/**
 * A node-redis cluster client that {@linkcode RedisStore.connect} can use instead of a URL: what
 * `createCluster()` returns, connected. All the keys of a store are in one hash slot (that of
 * `{name}`), so each store lives on one shard, and its scripts run there whole; the stores of a
 * cluster spread over its shards by name.
 */
export interface RedisClusterLike {
  /** Whether it is connected. */
  readonly isReady: boolean;
  /** Its master nodes (what tells a cluster client from a client). */
  readonly masters: ReadonlyArray<unknown>;
  /** node-redis' proxy of the cluster client with other reply types. */
  withTypeMapping(mapping: Record<number, unknown>): unknown;
  /** Sends a command to the node that serves `firstKey`. */
  sendCommand(
    firstKey: string | Uint8Array | undefined,
    isReadonly: boolean | undefined,
    args: ReadonlyArray<string | Uint8Array>,
  ): Promise<unknown>;
  /** A new cluster client with the same options. */
  duplicate(): unknown;
}
