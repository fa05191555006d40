/**
 * The tests' Redis: a private redis-server per test (bench/peers/redis.ts starts it on a free
 * loopback port, in a scratch directory, and stops it), and `redisTest`, which registers a test
 * that needs one, or registers it as skipped, with the reason in its name, where redis-server is
 * not installed.
 *
 * @module
 */
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
