/**
 * The connections of {@linkcode RedisStore}: what it needs of a node-redis client
 * ({@linkcode Client}), the clients and cluster clients a caller may pass to
 * {@linkcode RedisStore.connect} instead of a URL, a cluster client seen as one connection, and
 * the store's own client, connected and closed.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient, RESP_TYPES } from "redis";
import { MemallocError } from "../errors.ts";
import type { RedisClientLike, RedisClusterLike } from "./_client_like.ts";

/** The part of node-redis' client that the store uses. */
export interface Client {
  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>): Promise<T>;
  duplicate(): Client;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: Buffer) => void, bufferMode: true): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  on(event: "error", listener: (error: unknown) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  close(): Promise<void>;
  destroy(): void;
  readonly isReady: boolean;
}

/** Whether `value` is a node-redis cluster client (it has `masters`). */
export function isCluster(value: unknown): value is RedisClusterLike {
  const cluster = value as RedisClusterLike;
  return typeof value === "object" && value !== null && Array.isArray(cluster.masters) &&
    typeof cluster.withTypeMapping === "function" && typeof cluster.sendCommand === "function" &&
    typeof cluster.duplicate === "function";
}

/** The part of node-redis' cluster client that {@linkcode ClusterClient} uses. */
export interface Cluster {
  sendCommand<T>(
    firstKey: string,
    isReadonly: boolean,
    args: ReadonlyArray<string | Buffer>,
  ): Promise<T>;
  duplicate(): Cluster;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: Buffer) => void, bufferMode: true): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
  readonly isReady: boolean;
  readonly pubSubNode?: { client?: { isReady?: boolean } };
}

/**
 * A cluster client seen as the one connection the store needs: every command goes to the shard
 * of the store's slot (node-redis follows MOVED and ASK when slots move). Its subscriptions are
 * the classic ones, which a cluster delivers on every node; it counts as ready only while its
 * pub/sub node's connection is, and any node's error or return reaches the `error` and `ready`
 * listeners, which makes watchers hear "anything may have changed" more often than needed, never
 * less.
 */
export class ClusterClient implements Client {
  readonly #cluster: Cluster;
  readonly #key: string;

  constructor(cluster: Cluster, key: string) {
    this.#cluster = cluster;
    this.#key = key;
  }

  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>): Promise<T> {
    return this.#cluster.sendCommand<T>(this.#key, false, args);
  }

  duplicate(): Client {
    return new ClusterClient(this.#cluster.duplicate(), this.#key);
  }

  connect(): Promise<unknown> {
    return this.#cluster.connect();
  }

  subscribe(channel: string, listener: (message: Buffer) => void, bufferMode: true): Promise<void> {
    return this.#cluster.subscribe(channel, listener, bufferMode);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.#cluster.unsubscribe(channel);
  }

  on(event: "error" | "ready", listener: (error?: unknown) => void): unknown {
    if (event === "error") {
      this.#cluster.on("error", listener);
      this.#cluster.on("node-error", listener);
      this.#cluster.on("node-disconnect", () => listener(new Error("a cluster node disconnected")));
    } else {
      this.#cluster.on("node-ready", () => listener());
    }
    return this;
  }

  close(): Promise<void> {
    return this.#cluster.close();
  }

  destroy(): void {
    this.#cluster.destroy();
  }

  get isReady(): boolean {
    const pubSub = this.#cluster.pubSubNode;
    return this.#cluster.isReady && (pubSub === undefined || pubSub.client?.isReady === true);
  }
}

/** Whether `value` is a node-redis client (or anything that passes for one). */
export function isClient(value: unknown): value is RedisClientLike {
  const client = value as RedisClientLike;
  return typeof value === "object" && value !== null &&
    typeof client.withTypeMapping === "function" && typeof client.sendCommand === "function" &&
    typeof client.duplicate === "function";
}

/** A URL without its user name and password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "the server";
  }
}

/** An error's message, or what else was thrown as a string. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A node-redis client of the store's own: connected, or a MemallocError. */
export async function connectClient(
  url: string,
  name: string,
  shown: string,
  connectTimeout: number,
): Promise<Client> {
  let lastError: unknown;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    disableClientInfo: true,
    commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
    socket: {
      connectTimeout,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000),
    },
  }) as unknown as Client;
  client.on("error", (error) => lastError = error);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(lastError ?? new Error(`no answer in ${connectTimeout} ms`)),
          connectTimeout,
        );
      }),
    ]);
  } catch (error) {
    client.destroy();
    throw new MemallocError(
      `Cannot connect to ${shown} for store "${name}": ${message(lastError ?? error)}`,
      { code: "ERR_MEMALLOC_REMOTE", store: name, cause: lastError ?? error },
    );
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** Closes a client: gracefully while it is connected, at once otherwise. */
export async function closeClient(client: Client): Promise<void> {
  try {
    if (client.isReady) await client.close();
    else client.destroy();
  } catch {
    client.destroy();
  }
}
