/**
 * The tests' Redis: a private redis-server per test (bench/peers/redis.ts starts it on a free
 * loopback port, in a scratch directory, and stops it), and `redisTest`, which registers a test
 * that needs one, or registers it as skipped, with the reason in its name, where redis-server is
 * not installed.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { createClient } from "redis";
import { type RedisServer, redisServerVersion, startRedisServer } from "../bench/peers/redis.ts";
import { test } from "./_harness.ts";

export { type RedisServer, startRedisServer };

/** Why the Redis tests cannot run here, or undefined when they can. */
export const redisUnavailable: string | undefined = redisServerVersion() === undefined
  ? "redis-server not installed: run bench/install_redis.sh"
  : undefined;

/**
 * Registers a test that gets a redis-server of its own, stopped when it ends; skipped, and
 * named so, where there is none.
 */
export function redisTest(
  name: string,
  body: (server: RedisServer) => Promise<void>,
  options: { timeout?: number } = {},
): void {
  if (redisUnavailable !== undefined) {
    test(`${name} (skipped: ${redisUnavailable})`, () => {}, { ignore: true });
    return;
  }
  test(name, async () => {
    const server = await startRedisServer();
    try {
      await body(server);
    } finally {
      await server.stop();
    }
  }, options);
}

/** Why the cluster tests cannot run here (no redis-cli to create one), or undefined. */
export const clusterUnavailable: string | undefined = redisUnavailable ??
  (spawnSync("redis-cli", ["--version"]).status === 0
    ? undefined
    : "redis-cli not installed: run bench/install_redis.sh");

/** A Redis Cluster of private servers, every slot served, no replicas. */
export interface RedisCluster {
  /** Its nodes, in the order of their slot ranges (the first serves slots 0 and up). */
  readonly nodes: readonly RedisServer[];
  /** Stops every node. */
  stop(): Promise<void>;
}

/**
 * Starts `count` redis-servers in cluster mode, joins them with `redis-cli --cluster create`,
 * and waits until every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(count = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = () => Promise.all(nodes.map((node) => node.stop())).then(() => {});
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startRedisServer({
          args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
        }),
      );
    }
    const created = spawnSync("redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ], { encoding: "utf8", timeout: 30_000 });
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    }
    for (const node of nodes) {
      const client = createClient({ url: node.url, disableClientInfo: true });
      client.on("error", () => {});
      await client.connect();
      try {
        const deadline = Date.now() + 20_000;
        while (
          !String(await client.sendCommand(["CLUSTER", "INFO"])).includes("cluster_state:ok")
        ) {
          if (Date.now() > deadline) throw new Error(`cluster node ${node.url} never reached ok`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        await client.close();
      }
    }
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Registers a test that gets a Redis Cluster of its own (three nodes), stopped when it ends;
 * skipped, and named so, where redis-server or redis-cli is missing.
 */
export function redisClusterTest(
  name: string,
  body: (cluster: RedisCluster) => Promise<void>,
  options: { timeout?: number } = {},
): void {
  if (clusterUnavailable !== undefined) {
    test(`${name} (skipped: ${clusterUnavailable})`, () => {}, { ignore: true });
    return;
  }
  test(name, async () => {
    const cluster = await startRedisCluster();
    try {
      await body(cluster);
    } finally {
      await cluster.stop();
    }
  }, options);
}
