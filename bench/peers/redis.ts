/**
 * Redis: the usual answer to "share a cache between processes". Every call is a round trip over
 * loopback TCP, so this peer is asynchronous ({@linkcode AsyncPeer}).
 *
 * Server: Debian's `redis-server`, started here on a free port of 127.0.0.1 with no persistence
 * (`--save "" --appendonly no`), stopped on close. Install it with `bench/install_redis.sh`.
 *
 * Clients (one connection each):
 * - `"bun"`: Bun's built-in `RedisClient` (Bun only), with `enableAutoPipelining: false`, so an
 *   awaited call goes out at once; requests issued together still share the connection;
 * - `"node-redis"`: npm `redis` (node-redis), on Deno and on Bun; requests issued together are
 *   pipelined on the connection.
 *
 * Strings travel as UTF-8, bytes raw; `getBytes` returns the client's Buffer (a Uint8Array).
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createConnection } from "node:net";
import { runtime } from "../../ffi/runtime.ts";
import type { AsyncPeer, PeerFactoryOptions } from "./types.ts";
import {
  atExit,
  errorMessage,
  freePort,
  makeScratchDir,
  packageVersion,
  removeScratchDir,
  warnUnavailable,
} from "./types.ts";

/** Which Redis client library a peer uses. */
export type RedisClientKind = "bun" | "node-redis";

/** A redis-server process started by {@linkcode startRedisServer}. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The TCP port on 127.0.0.1. */
  readonly port: number;
  /** The server's version, e.g. `"7.0.15"`. */
  readonly version: string;
  /** The server's process id (tests kill it to cut every connection at once). */
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory; safe twice. */
  stop(): Promise<void>;
}

/** The message when redis-server is missing. */
const notInstalled = "redis-server not installed: run bench/install_redis.sh";

/**
 * The version of the `redis-server` on PATH.
 *
 * @returns The version, e.g. `"7.0.15"`, or undefined when redis-server is not installed.
 */
export function redisServerVersion(): string | undefined {
  const result = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return /v=(\S+)/.exec(result.stdout)?.[1] ?? "?";
}

/**
 * Whether the Redis server with process id `pid` answers on the port within `timeoutMs`; the
 * pid check makes sure that it is our server, not another one that took the port first.
 */
function answers(port: number, pid: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    const decoder = new TextDecoder();
    let reply = "";
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (chunk: Uint8Array) => {
      reply += decoder.decode(chunk, { stream: true });
      if (reply.startsWith("-")) finish(false); // an error reply: still loading, or not Redis
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) finish(Number(match[1]) === pid);
    });
    socket.on("error", () => finish(false));
  });
}

/** Resolves when `child` has exited, or after `ms`; true when it exited. */
function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a private redis-server on a free port of 127.0.0.1 (no persistence, its working
 * directory a scratch directory on /dev/shm) and waits until it answers. The server is
 * also killed if this process exits without stopping it.
 *
 * @param options `port`: the port to listen on (a server restarted where clients expect it);
 * default: a free one. `args`: more arguments for redis-server (e.g. `--cluster-enabled yes`).
 * @returns The running server.
 * @throws {Error} When redis-server is not installed (`redis-server not installed: run
 * bench/install_redis.sh`) or does not come up within 10 s.
 *
 * @example Start and stop
 * ```ts ignore
 * import { startRedisServer } from "./redis.ts";
 *
 * const server = await startRedisServer();
 * console.log(server.url); // redis://127.0.0.1:<port>
 * await server.stop();
 * ```
 */
export async function startRedisServer(
  options: { port?: number; args?: readonly string[] } = {},
): Promise<RedisServer> {
  const version = redisServerVersion();
  if (version === undefined) throw new Error(notInstalled);
  const dir = makeScratchDir("redis");
  let lastOutput = "";
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = options.port ?? await freePort();
      // deno-fmt-ignore
      const args = [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--dir", dir, "--logfile", "", "--loglevel", "warning",
        ...options.args ?? [],
      ];
      const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      const keep = (chunk: Uint8Array) => {
        output = (output + new TextDecoder().decode(chunk)).slice(-2000);
      };
      child.stdout?.on("data", keep);
      child.stderr?.on("data", keep);
      // If this process exits without stop(), the server must not outlive it.
      const forgetKill = atExit(() => child.kill("SIGKILL"));
      const deadline = Date.now() + 10_000;
      let up = false;
      while (!up && Date.now() < deadline && child.exitCode === null) {
        up = child.pid !== undefined && await answers(port, child.pid, 500);
        if (!up) await new Promise((r) => setTimeout(r, 20));
      }
      if (up) {
        let stopped = false;
        return {
          url: `redis://127.0.0.1:${port}`,
          port,
          version,
          pid: child.pid!,
          async stop() {
            if (stopped) return;
            stopped = true;
            child.kill("SIGTERM");
            if (!(await exited(child, 5_000))) {
              child.kill("SIGKILL");
              await exited(child, 5_000);
            }
            forgetKill();
            removeScratchDir(dir);
          },
        };
      }
      lastOutput = output.trim();
      child.kill("SIGKILL");
      await exited(child, 5_000);
      forgetKill();
      // Most likely the port was taken between freePort() and the bind: try another one.
    }
  } catch (error) {
    removeScratchDir(dir);
    throw error;
  }
  removeScratchDir(dir);
  throw new Error(`redis-server did not start: ${lastOutput || "no output"}`);
}

/** The connection a peer needs, whatever the client library. */
interface Connection {
  readonly label: string;
  getBytes(key: string): Promise<Uint8Array | null>;
  getString(key: string): Promise<string | null>;
  set(key: string, value: string | Uint8Array): Promise<unknown>;
  del(key: string): Promise<number>;
  incr(key: string): Promise<number>;
  /** SET with PX (a ttl in ms) and/or NX; whether it stored the value. */
  setWith(key: string, value: string, ttl: number, nx: boolean): Promise<boolean>;
  /** EVAL of `script` on one key; its integer reply. */
  evalOne(script: string, key: string, arg: string): Promise<number>;
  info(section: string): Promise<string>;
  close(): Promise<void>;
}

/** A fixed-window rate limiter's step: INCR, and PEXPIRE when the counter is new. */
const RATE_LIMIT_SCRIPT =
  "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n";

/** Bun's built-in client, as far as used here (Bun's types are not installed). */
interface BunRedisClient {
  connect(): Promise<void>;
  get(key: string): Promise<string | null>;
  getBuffer(key: string): Promise<Uint8Array | null>;
  set(key: string, value: string | Uint8Array): Promise<unknown>;
  del(key: string): Promise<number>;
  incr(key: string): Promise<number>;
  send(command: string, args: string[]): Promise<unknown>;
  close(): void;
}

/** Connects with Bun's built-in `RedisClient`. */
async function connectBun(url: string): Promise<Connection> {
  const specifier = "bun"; // a variable, so that Deno never resolves it
  const bun = (await import(specifier)) as {
    RedisClient: new (url: string, options: object) => BunRedisClient;
  };
  const client = new bun.RedisClient(url, { enableAutoPipelining: false });
  await client.connect();
  const version = (globalThis as { Bun?: { version: string } }).Bun?.version ?? "?";
  return {
    label: `Bun RedisClient (bun ${version})`,
    getBytes: (key) => client.getBuffer(key),
    getString: (key) => client.get(key),
    set: (key, value) => client.set(key, value),
    del: (key) => client.del(key),
    incr: (key) => client.incr(key),
    setWith: async (key, value, ttl, nx) =>
      (await client.send("SET", [
        key,
        value,
        ...(ttl > 0 ? ["PX", String(ttl)] : []),
        ...(nx ? ["NX"] : []),
      ])) !== null,
    evalOne: async (script, key, arg) => Number(await client.send("EVAL", [script, "1", key, arg])),
    info: async (section) => String(await client.send("INFO", [section])),
    close: () => Promise.resolve(client.close()),
  };
}

/** Connects with node-redis (npm `redis`). */
async function connectNodeRedis(url: string): Promise<Connection> {
  const { createClient, RESP_TYPES } = await import("redis");
  const { Buffer } = await import("node:buffer");
  const client = createClient({ url, disableClientInfo: true });
  let lastError: unknown;
  client.on("error", (error: unknown) => lastError = error);
  try {
    await client.connect();
  } catch (error) {
    client.destroy();
    throw lastError ?? error;
  }
  const bytes = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  return {
    label: `node-redis ${packageVersion("redis")}`,
    getBytes: (key) => bytes.get(key),
    getString: (key) => client.get(key),
    set: (key, value) =>
      client.set(
        key,
        typeof value === "string"
          ? value
          : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      ),
    del: (key) => client.del(key),
    incr: (key) => client.incr(key),
    setWith: async (key, value, ttl, nx) =>
      (await client.set(key, value, {
        ...(ttl > 0 ? { PX: ttl } : {}),
        ...(nx ? { NX: true } : {}),
      } as never)) !== null,
    evalOne: async (script, key, arg) =>
      Number(await client.eval(script, { keys: [key], arguments: [arg] })),
    info: (section) => client.info(section),
    async close() {
      try {
        await client.close();
      } catch {
        client.destroy();
      }
    },
  };
}

/**
 * The server a Redis-backed peer talks to: `url` when one is given (left running), else a
 * private redis-server that the peer stops on close. `undefined`, with the reason handed to
 * `onUnavailable`, when there is none to start.
 *
 * @param url A running server's URL, or undefined.
 * @param name The peer's name, for the reason.
 * @param onUnavailable Told why the peer cannot run.
 * @returns The server started (if any) and the URL to connect to.
 */
export async function serverOrUrl(
  url: string | undefined,
  name: string,
  onUnavailable: (name: string, reason: string) => void,
): Promise<{ server: RedisServer | undefined; url: string } | undefined> {
  if (url !== undefined) return { server: undefined, url };
  try {
    const server = await startRedisServer();
    return { server, url: server.url };
  } catch (error) {
    onUnavailable(name, errorMessage(error));
    return undefined;
  }
}

/** Options of {@linkcode openRedisPeer}. */
export interface RedisPeerOptions extends PeerFactoryOptions {
  /** Client library. Default: `"bun"` under Bun, `"node-redis"` elsewhere. */
  client?: RedisClientKind;
  /**
   * A running server to connect to (another process's peer `location`, or a
   * {@linkcode RedisServer.url}); it is left running on close. Default: start a private
   * redis-server, stopped on close.
   */
  url?: string;
}

/**
 * Opens a Redis peer: starts a private redis-server (unless `options.url` names one) and
 * connects one client.
 *
 * `memoryBytes()` reports INFO's `used_memory` minus `used_memory_startup`: what the server
 * allocated since it started (data, key space, client buffers).
 *
 * @param options Client library, server and what to do when Redis is unavailable.
 * @returns The peer, or undefined when redis-server is not installed or the client cannot run
 * here (the reason goes to `options.onUnavailable`).
 *
 * @example Set and get
 * ```ts ignore
 * import { openRedisPeer } from "./redis.ts";
 *
 * const peer = await openRedisPeer();
 * if (peer) {
 *   await peer.setString("greeting", "hello");
 *   console.log(await peer.getString("greeting")); // hello
 *   await peer.close();
 * }
 * ```
 */
export async function openRedisPeer(
  options: RedisPeerOptions = {},
): Promise<AsyncPeer | undefined> {
  const kind = options.client ?? (runtime === "bun" ? "bun" : "node-redis");
  const name = kind === "bun" ? "Redis (Bun RedisClient)" : "Redis (node-redis)";
  const onUnavailable = options.onUnavailable ?? warnUnavailable;
  if (kind === "bun" && runtime !== "bun") {
    onUnavailable(name, "Bun's RedisClient runs only under Bun");
    return undefined;
  }
  const target = await serverOrUrl(options.url, name, onUnavailable);
  if (target === undefined) return undefined;
  const { server, url } = target;
  let connection: Connection;
  try {
    connection = kind === "bun" ? await connectBun(url) : await connectNodeRedis(url);
  } catch (error) {
    await server?.stop();
    onUnavailable(name, `cannot connect to ${url} (${errorMessage(error)})`);
    return undefined;
  }
  const serverVersion = server?.version ??
    /redis_version:(\S+)/.exec(await connection.info("server"))?.[1] ?? "?";
  let closed = false;
  return {
    name,
    description:
      `redis-server ${serverVersion} at ${url} (loopback TCP, no persistence), ${connection.label}, one connection`,
    sharesAcrossProcesses: true,
    location: url,
    pipelines: true,
    async getBytes(key) {
      return (await connection.getBytes(key)) ?? undefined;
    },
    async getString(key) {
      return (await connection.getString(key)) ?? undefined;
    },
    async setBytes(key, value) {
      await connection.set(key, value);
    },
    async setString(key, value) {
      await connection.set(key, value);
    },
    async delete(key) {
      return (await connection.del(key)) > 0;
    },
    increment(key) {
      return connection.incr(key);
    },
    add(key, value) {
      return connection.setWith(key, value, 0, true);
    },
    async setStringTtl(key, value, ttl) {
      await connection.setWith(key, value, ttl, false);
    },
    async getStringTtl(key) {
      return (await connection.getString(key)) ?? undefined; // the server drops expired keys
    },
    incrementTtl(key, ttl) {
      // INCR, and a new counter's expiry, in one round trip and one atomic step on the server.
      return connection.evalOne(RATE_LIMIT_SCRIPT, key, String(ttl));
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await connection.close();
      } finally {
        await server?.stop();
      }
    },
    async memoryBytes() {
      if (closed) return undefined;
      const info = await connection.info("memory");
      const used = /used_memory:(\d+)/.exec(info)?.[1];
      const startup = /used_memory_startup:(\d+)/.exec(info)?.[1];
      return used === undefined || startup === undefined
        ? undefined
        : Number(used) - Number(startup);
    },
  };
}
