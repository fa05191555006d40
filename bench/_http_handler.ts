/**
 * The request handler of the HTTP benchmark (bench/http_bench.ts): answers `GET /s/<id>` with one JSON
 * session, taken from the source named by `MEMALLOC_HTTP_SOURCE`, serialised with
 * `JSON.stringify` on every request whatever the source:
 * - `object`: an object in the worker's own memory (the ceiling);
 * - `memalloc`: `read()` of a memalloc store (`MEMALLOC_HTTP_STORE`) the benchmark filled (the
 *   sessions as records, the default);
 * - `frozen`: `read(name, { frozen: true })` of the same store;
 * - `json`: `readJson()` of copies in the same store written with `objects: "json"`: the stored
 *   JSON text, sent as it is (no decode, no `JSON.stringify`);
 * - `lmdb`: lmdb-js `get()` of a database (`MEMALLOC_HTTP_LMDB`) in its default encoding;
 * - `redis`: `GET` + `JSON.parse` from Redis (`MEMALLOC_HTTP_REDIS`): Bun's `RedisClient` under
 *   Bun, node-redis elsewhere.
 *
 * bench/_http_server.ts runs it under Bun and Node, bench/_http_deno.ts under `deno serve`.
 *
 * @module
 */
import process from "node:process";
import { session, sessionKey, SESSIONS } from "./_http_data.ts";

const env = process.env;
const source = env.MEMALLOC_HTTP_SOURCE ?? "object";
/** A session by id, from the source. */
export type Lookup = (id: number) => unknown;

/** Opens the source `MEMALLOC_HTTP_SOURCE` names. */
export async function openSource(): Promise<Lookup> {
  switch (source) {
    case "object": {
      const sessions = Array.from({ length: SESSIONS }, (_, i) => session(i));
      return (id) => sessions[id];
    }
    case "memalloc":
    case "frozen":
    case "json": {
      const { Memalloc } = await import("../mod.ts");
      const store = Memalloc.open(env.MEMALLOC_HTTP_STORE!, { create: false });
      const keys = Array.from({ length: SESSIONS }, (_, i) => sessionKey(i));
      if (source === "memalloc") return (id) => store.read(keys[id]!);
      if (source === "json") {
        // The benchmark wrote these as JSON text (objects: "json"), the others as records.
        const jsonKeys = keys.map((key) => `json:${key}`);
        return (id) => store.readJson(jsonKeys[id]!);
      }
      const frozen = { frozen: true };
      return (id) => store.read(keys[id]!, frozen);
    }
    case "lmdb": {
      const lmdb = await import("lmdb");
      const db = lmdb.open({ path: env.MEMALLOC_HTTP_LMDB!, readOnly: true });
      const keys = Array.from({ length: SESSIONS }, (_, i) => sessionKey(i));
      return (id) => db.get(keys[id]!);
    }
    case "redis": {
      const keys = Array.from({ length: SESSIONS }, (_, i) => sessionKey(i));
      const url = env.MEMALLOC_HTTP_REDIS!;
      if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
        const specifier = "bun";
        const { RedisClient } = (await import(specifier)) as {
          RedisClient: new (url: string) => {
            connect(): Promise<void>;
            get(key: string): Promise<string | null>;
          };
        };
        const client = new RedisClient(url);
        await client.connect();
        return async (id) => JSON.parse((await client.get(keys[id]!))!);
      }
      const { createClient } = await import("redis");
      const client = createClient({ url, disableClientInfo: true });
      await client.connect();
      return async (id) => JSON.parse((await client.get(keys[id]!))!);
    }
    default:
      throw new Error(`unknown MEMALLOC_HTTP_SOURCE "${source}"`);
  }
}

/** The session id of a request path `/s/<id>`, or -1. */
export function idOf(path: string): number {
  const slash = path.lastIndexOf("/");
  const id = Number(path.slice(slash + 1));
  return Number.isInteger(id) && id >= 0 ? id % SESSIONS : -1;
}

/** The headers of a session response. */
export const JSON_HEADERS = { "content-type": "application/json" };

/** A response body: the value's JSON, or the JSON text itself (the `json` source). */
export function body(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The response to a request for `url`. */
export async function answer(url: string, lookup: Lookup): Promise<Response> {
  const id = idOf(url);
  if (id < 0) return new Response("not found", { status: 404 });
  const value = await lookup(id);
  if (value === undefined) return new Response("no such session", { status: 500 });
  return new Response(body(value), { headers: JSON_HEADERS });
}
