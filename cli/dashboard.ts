/**
 * `memalloc dashboard`: a web page over the stores on this machine, served by `node:http`
 * (which Deno, Bun and Node all implement), with a small JSON API:
 *
 * | Request | Answer |
 * | --- | --- |
 * | `GET /` | the page; `/assets/uPlot.iife.min.js`, `/assets/uPlot.min.css` its chart library |
 * | `GET /api/stores` | every store (`listStores()`) and the one the command was given |
 * | `GET /api/stats?store=S` | `stats()` of S, with the time |
 * | `GET /api/events?store=S` | the same, once a second, as server-sent events |
 * | `GET /api/map?store=S&cells=N` | `map(N)`: the heap's cells by kind, fragmentation, free-block histogram |
 * | `GET /api/entries?store=S&prefix=&sort=&order=&offset=&limit=` | one page of entries' metadata |
 * | `GET /api/value?store=S&name=K` | one value: text, JSON, hex or inspect, at most 64 KiB of it |
 * | `POST /api/delete` `{ store, name }`, `/api/clean` `{ store }`, `/api/purge` `{ store }` | the mutation's result |
 *
 * Reading is open to whoever reaches the port (127.0.0.1 unless `--host`); the mutations need
 * the token the command prints (`Authorization: Bearer T` or `X-Memalloc-Token: T`), an
 * `Origin`, when there is one, that is the page's own, and a JSON body. Every request must name
 * the server in its `Host` (no DNS rebinding). Errors are JSON `{ error }`: 400 for bad input,
 * 403 without the token, 404 for an unknown store, entry or path, 409 for a store that cannot be
 * opened (another layout, not trusted, permission denied).
 *
 * Nothing but the mutations writes to a store: stores are opened with `create: false`; the
 * figures, the map and the entry list read no value (no hit or miss counted); the value viewer
 * finds its entry by a prefix walk (`Memalloc.entries`), which counts no hit either.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { Memalloc, type MemallocListedEntry } from "../memalloc.ts";
import { MemallocError } from "../errors.ts";
import {
  type Command,
  type Input,
  print,
  printJson,
  STORE_RULE,
  usage,
  wholeNumber,
} from "./_command.ts";
import { type EntryQuery, pageEntries, SORT_KEYS, type SortKey } from "./_entries.ts";
import { formatValue, toHex } from "./format.ts";
import { listStores } from "./stores.ts";
import { DASHBOARD_PAGE } from "./_dashboard_page.ts";

/** The environment variable `memalloc dashboard` takes its token from when `--token` is not given. */
export const TOKEN_ENV = "MEMALLOC_DASHBOARD_TOKEN";
/** The most bytes of a value the value viewer shows. */
export const VALUE_CAP = 64 * 1024;
/** The shortest token accepted (a printed one is 32 hex digits: 128 bits). */
export const MIN_TOKEN_LENGTH = 16;

/** How {@linkcode serveDashboard} serves. */
export interface DashboardOptions {
  /** The store the page shows first; without it, the page lists the stores to pick from. */
  store?: string;
  /** The port (default 7070; 0: any free port). */
  port?: number;
  /** The address to listen on (default `127.0.0.1`). */
  host?: string;
  /** The token the mutations need (default: 128 random bits, as hex). */
  token?: string;
  /** Time between two server-sent figures, in ms (default 1,000). */
  interval?: number;
}

/** A running dashboard. */
export interface DashboardServer {
  /** The page's address, e.g. `http://127.0.0.1:7070/`. */
  url: string;
  /** The page's address with the token in its fragment: the link to open. */
  link: string;
  /** The address it listens on. */
  host: string;
  /** The port it listens on (the real one when 0 was asked). */
  port: number;
  /** The token the mutations need. */
  token: string;
  /** Stops serving, ends the event streams and closes the stores it opened; safe to call twice. */
  close(): Promise<void>;
}

/** An answer with a status other than 200, as JSON `{ error }`. */
class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** 128 random bits as 32 hex digits. */
function randomToken(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** Whether two strings are equal, in a time that does not depend on where they differ. */
function sameToken(given: string, token: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(token);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i]!;
  return diff === 0;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const ANY = new Set(["0.0.0.0", "::", "[::]"]);

/** uPlot's files, read once from the installed `uplot` package. */
const assets = new Map<string, { body: Uint8Array; type: string } | Error>();
function asset(file: string, type: string): { body: Uint8Array; type: string } | Error {
  let found = assets.get(file);
  if (found === undefined) {
    try {
      const path = createRequire(import.meta.url).resolve(`uplot/dist/${file}`);
      found = { body: readFileSync(path), type };
    } catch (error) {
      found = new Error(
        `The chart library is not installed (uplot/dist/${file}: ${(error as Error).message})`,
      );
    }
    assets.set(file, found);
  }
  return found;
}
const ASSETS: Record<string, [string, string]> = {
  "/assets/uPlot.iife.min.js": ["uPlot.iife.min.js", "text/javascript; charset=utf-8"],
  "/assets/uPlot.min.css": ["uPlot.min.css", "text/css; charset=utf-8"],
};

/**
 * Serves the dashboard until `close()`. Stores are opened when a request first names them
 * (`create: false`, so a missing one is a 404, never created) and closed by `close()`.
 *
 * @param options Store, port, host, token and event interval.
 * @returns The running server, with its real port, address and token.
 * @throws {RangeError} For a port out of range or a token shorter than 16 characters.
 * @throws {Error} When the port cannot be listened on (`EADDRINUSE`, `EACCES`), with the code.
 *
 * @example Serve on a free port and ask for the figures
 * ```ts
 * import { Memalloc, type MemallocListedEntry } from "../memalloc.ts";
 * import { serveDashboard } from "./dashboard.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * using store = Memalloc.open(name, { maxMemory: 1 << 20 });
 * store.write("greeting", "Foobar");
 * const server = await serveDashboard({ store: name, port: 0 });
 * const response = await fetch(`${server.url}api/stats?store=${encodeURIComponent(name)}`);
 * console.log((await response.json()).stats.entries); // 1
 * await server.close();
 * Memalloc.unlink(name);
 * ```
 */
export async function serveDashboard(options: DashboardOptions = {}): Promise<DashboardServer> {
  const { store: selected, port: askedPort = 7070, host = "127.0.0.1", interval = 1000 } = options;
  if (!Number.isInteger(askedPort) || askedPort < 0 || askedPort > 65535) {
    throw new RangeError(`The port must be a whole number from 0 to 65535, got ${askedPort}`);
  }
  const token = options.token ?? randomToken();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new RangeError(
      `The token must have at least ${MIN_TOKEN_LENGTH} characters, got ${token.length}`,
    );
  }
  const open = new Map<string, Memalloc>();
  const streams = new Set<ServerResponse>();
  let port = askedPort;

  /** The store named by `name`, opened once, or a 404 when there is no such store. */
  function storeOf(name: string | null): Memalloc {
    if (name === null || name === "") throw new HttpError(400, "Missing store: add ?store=NAME");
    let store = open.get(name);
    if (store !== undefined && !Memalloc.exists(name)) {
      store.close();
      open.delete(name);
      store = undefined;
    }
    if (store === undefined) {
      try {
        store = Memalloc.open(name, { create: false });
      } catch (error) {
        if (error instanceof MemallocError && error.code === "ERR_MEMALLOC_NOT_FOUND") {
          throw new HttpError(404, `No store "${name}"`);
        }
        if (error instanceof TypeError || error instanceof RangeError) {
          throw new HttpError(400, error.message);
        }
        if (error instanceof MemallocError) {
          // Another layout, not trusted, permission denied: the store is there, but not usable.
          throw new HttpError(409, error.message);
        }
        throw error;
      }
      open.set(name, store);
    }
    return store;
  }

  /** Whether the request's Host names this server. */
  function hostAllowed(header: string | undefined): boolean {
    if (ANY.has(host)) return true;
    if (header === undefined) return false;
    const names = LOOPBACK.has(host) ? [...LOOPBACK] : [host.includes(":") ? `[${host}]` : host];
    return names.some((name) => header === `${name}:${port}`);
  }

  function authorize(request: IncomingMessage): void {
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1];
    const given = bearer ?? headerText(request.headers["x-memalloc-token"]);
    if (given === undefined || !sameToken(given.trim(), token)) {
      throw new HttpError(
        403,
        "This needs the dashboard's token (Authorization: Bearer TOKEN or X-Memalloc-Token), which memalloc dashboard printed at start",
      );
    }
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `http://${request.headers.host}`) {
      throw new HttpError(403, `Requests from another origin are refused, got "${origin}"`);
    }
    if (request.headers["sec-fetch-site"] === "cross-site") {
      throw new HttpError(403, "Cross-site requests are refused");
    }
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!hostAllowed(request.headers.host)) {
      throw new HttpError(403, `Unknown host "${request.headers.host ?? ""}"`);
    }
    const url = new URL(request.url ?? "/", "http://dashboard");
    const query = url.searchParams;
    const path = url.pathname;
    const method = request.method ?? "GET";
    if (method === "POST") {
      authorize(request);
      const body = await readJson(request);
      const store = storeOf(stringField(body, "store"));
      if (path === "/api/delete") {
        const name = stringField(body, "name");
        if (name === null) throw new HttpError(400, "Missing name: the entry to delete");
        return json(response, 200, { deleted: invalidToBadRequest(() => store.delete(name)) });
      }
      if (path === "/api/clean") return json(response, 200, { evicted: store.clean() });
      if (path === "/api/purge") return json(response, 200, { removed: store.purge() });
      throw new HttpError(404, `No such action: POST ${path}`);
    }
    if (method !== "GET" && method !== "HEAD") {
      throw new HttpError(405, `Method ${method} is not allowed here`);
    }
    if (path === "/" || path === "/index.html") {
      return send(response, 200, "text/html; charset=utf-8", DASHBOARD_PAGE);
    }
    const assetFile = ASSETS[path];
    if (assetFile !== undefined) {
      const found = asset(...assetFile);
      if (found instanceof Error) throw new HttpError(404, found.message);
      return send(response, 200, found.type, found.body, "public, max-age=3600");
    }
    switch (path) {
      case "/api/stores":
        return json(response, 200, { selected: selected ?? null, stores: listStores() });
      case "/api/stats":
        return json(response, 200, {
          time: Date.now(),
          stats: storeOf(query.get("store")).stats(),
        });
      case "/api/map": {
        const store = storeOf(query.get("store"));
        const cells = numberParam(query, "cells", 512, 1, 65536);
        return json(response, 200, store.map(cells));
      }
      case "/api/entries": {
        const store = storeOf(query.get("store"));
        const sort = query.get("sort") ?? "version";
        if (!(SORT_KEYS as readonly string[]).includes(sort)) {
          throw new HttpError(400, `sort must be one of ${SORT_KEYS.join(", ")}, got "${sort}"`);
        }
        const order = query.get("order") ?? "asc";
        if (order !== "asc" && order !== "desc") {
          throw new HttpError(400, `order must be asc or desc, got "${order}"`);
        }
        const entryQuery: EntryQuery = {
          prefix: query.get("prefix") ?? "",
          sort: sort as SortKey,
          order,
          offset: numberParam(query, "offset", 0, 0, Number.MAX_SAFE_INTEGER),
          limit: numberParam(query, "limit", 50, 1, 1000),
        };
        const page = invalidToBadRequest(() => pageEntries(store, entryQuery));
        return json(response, 200, { ...entryQuery, ...page });
      }
      case "/api/value":
        return json(response, 200, valueOf(storeOf(query.get("store")), query.get("name")));
      case "/api/events":
        return events(request, response, storeOf(query.get("store")));
    }
    throw new HttpError(404, `Nothing at ${path}`);
  }

  function events(request: IncomingMessage, response: ServerResponse, store: Memalloc): void {
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    streams.add(response);
    const tick = (): void => {
      try {
        response.write(`data: ${JSON.stringify({ time: Date.now(), stats: store.stats() })}\n\n`);
      } catch (error) {
        response.write(`event: failure\ndata: ${JSON.stringify({ error: message(error) })}\n\n`);
        stop();
      }
    };
    const timer = setInterval(tick, interval);
    const stop = (): void => {
      clearInterval(timer);
      streams.delete(response);
      response.end();
    };
    request.on("close", stop);
    tick();
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) return void response.end();
      if (error instanceof HttpError) return json(response, error.status, { error: error.message });
      if (error instanceof MemallocError) {
        return json(response, 500, { error: error.message, code: error.code });
      }
      json(response, 500, { error: message(error) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `Cannot listen on ${host}:${askedPort}: ${error.message}${
            error.code === "EADDRINUSE" ? "; pick another --port" : ""
          }`,
          { cause: error },
        ),
      );
    });
    server.listen(askedPort, host, () => resolve());
  });
  const address = server.address();
  if (address !== null && typeof address === "object") port = address.port;
  const urlHost = ANY.has(host) ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}/`;
  const fragment = new URLSearchParams({ token });
  if (selected !== undefined) fragment.set("store", selected);
  let closing: Promise<void> | undefined;
  return {
    url,
    link: `${url}#${fragment}`,
    host,
    port,
    token,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        for (const stream of streams) stream.end();
        streams.clear();
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }).finally(() => {
        for (const store of open.values()) store.close();
        open.clear();
      });
      return closing;
    },
  };
}

/** The value viewer's answer: the value as text, found without counting a hit. */
function valueOf(store: Memalloc, name: string | null): Record<string, unknown> {
  if (name === null || name === "") throw new HttpError(400, "Missing name: add &name=KEY");
  // Walks that read without counting a hit or a miss (read() and info() would count one):
  // first the names under the prefix, with their metadata (no value read); then the values, up
  // to the entry's place among them.
  let info: MemallocListedEntry | undefined;
  let place = -1;
  let found: [string, unknown] | undefined;
  invalidToBadRequest(() => {
    let index = 0;
    for (const entry of store.list({ prefix: name })) {
      if (entry.name === name) [info, place] = [entry, index];
      index++;
    }
    if (info === undefined) return;
    let last: [string, unknown] | undefined;
    for (const pair of store.entries({ prefix: name, limit: place + 1 })) last = pair;
    if (last?.[0] === name) found = last;
    else {
      // Written again between the two walks: look through them all.
      for (const pair of store.entries({ prefix: name })) if (pair[0] === name) found = pair;
    }
  });
  if (found === undefined) throw new HttpError(404, `No entry "${name}" in store "${store.name}"`);
  let value = found[1];
  let truncated = false;
  let size: number;
  if (value instanceof Uint8Array) {
    size = value.length;
    if (value.length > VALUE_CAP / 2) {
      value = value.subarray(0, VALUE_CAP / 2);
      truncated = true;
    }
  }
  const formatted = formatValue(value);
  let text = formatted.text;
  size ??= new TextEncoder().encode(text).length;
  if (text.length > VALUE_CAP) {
    text = text.slice(0, VALUE_CAP);
    truncated = true;
  }
  return { name, ...info, encoding: formatted.encoding, text, truncated, textSize: size };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs `body`; a TypeError or RangeError from memalloc (a bad name, prefix) becomes a 400. */
function invalidToBadRequest<T>(body: () => T): T {
  try {
    return body();
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw new HttpError(400, error.message);
    }
    throw error;
  }
}

function numberParam(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = query.get(name);
  if (text === null || text === "") return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HttpError(400, `${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}

function stringField(body: Record<string, unknown>, field: string): string | null {
  const value = body[field];
  if (value === undefined) return null;
  if (typeof value !== "string") throw new HttpError(400, `${field} must be a string`);
  return value;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(
      400,
      `The body must be JSON (Content-Type: application/json), got "${type}"`,
    );
  }
  let text = "";
  for await (const chunk of request) {
    text += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk as Uint8Array);
    if (text.length > 64 * 1024) throw new HttpError(400, "The body is larger than 64 KiB");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "The body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "The body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: string | Uint8Array,
  cache = "no-store",
): void {
  response.writeHead(status, { "content-type": type, "cache-control": cache, ...SECURITY_HEADERS });
  response.end(body);
}

function json(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, "application/json; charset=utf-8", JSON.stringify(body));
}

async function dashboardRun(input: Input): Promise<number> {
  const { io, values } = input;
  const options: DashboardOptions = {};
  const name = input.positionals[0];
  if (name !== undefined) {
    // The store must exist now: a missing one is an error, never a store created.
    Memalloc.open(name, { create: false }).close();
    options.store = name;
  }
  if (typeof values.port === "string") {
    options.port = wholeNumber(input, "--port", values.port, 0);
    if (options.port > 65535) {
      throw usage(input.command, `--port must be from 0 to 65535, got "${values.port}"`);
    }
  }
  if (typeof values.host === "string") {
    if (values.host === "") throw usage(input.command, "--host must not be empty");
    options.host = values.host;
  }
  const token = typeof values.token === "string" ? values.token : process.env[TOKEN_ENV];
  if (token !== undefined && token !== "") {
    if (token.length < MIN_TOKEN_LENGTH) {
      throw usage(
        input.command,
        `the token must have at least ${MIN_TOKEN_LENGTH} characters, got ${token.length}`,
      );
    }
    options.token = token;
  }
  const server = await serveDashboard(options);
  if (input.json) printJson(io, { url: server.url, link: server.link, token: server.token });
  else {
    print(io, `memalloc dashboard: serving ${server.url} (Ctrl-C to stop)`);
    print(io, `token: ${server.token}`);
    print(io, `open: ${server.link}`);
  }
  let untrap: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    untrap = io.trapSignals?.(resolve);
  });
  untrap?.();
  await server.close();
  return 0;
}

/**
 * The `dashboard` command, for the table of `memalloc` commands.
 *
 * @example Its usage line
 * ```ts
 * import { dashboardCommand } from "./dashboard.ts";
 *
 * console.log(dashboardCommand.usage.startsWith("dashboard [NAME]")); // true
 * ```
 */
export const dashboardCommand: Command = {
  summary: "a live web page: figures, chart, memory map, entries",
  usage: "dashboard [NAME] [--port 7070] [--host 127.0.0.1] [--token T] [--json]",
  required: [],
  optional: ["NAME"],
  options: {
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
  },
  help: `Serves a web page over the stores on this machine until Ctrl-C: each store's figures,
a live chart of operations per second, hit ratio and usage, the memory map of its heap
(fragmentation, free-block sizes), and its entries (prefix search, sorting and paging by the
server, a value viewer). Without NAME the page lists every store to pick from.

It prints the address and a token of 128 random bits. Deleting an entry, clean and purge need
that token (the page asks for it; the printed link carries it in its #fragment, which the
browser never sends); without it the server answers 403. Nothing else changes a store: stores
are opened without creating anything, and the page counts no hit or miss (the value viewer
finds its entry by a walk that counts none).
${STORE_RULE}

  --port N     Port to listen on (default 7070; 0: any free port)
  --host H     Address to listen on (default 127.0.0.1; 0.0.0.0 serves every interface:
               anyone who reaches it can read the stores)
  --token T    The token to use instead of a random one, at least ${MIN_TOKEN_LENGTH} characters
               (or the environment variable ${TOKEN_ENV})
  --json       Print { url, link, token } as one JSON object instead of three lines`,
  run: dashboardRun,
};
