/**
 * The `memalloc` commands: what each one takes, says in its help, and does.
 *
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";
import { Memalloc, type MemallocEntryInfo } from "../memalloc.ts";
import { ST_REPAIRS } from "../allocator/layout.ts";
import { MemallocError } from "../errors.ts";
import {
  arg,
  type Command,
  CREATE_HELP,
  CREATE_RULE,
  duration,
  type Input,
  oneLine,
  open,
  print,
  printJson,
  STORE_RULE,
  usage,
  wholeNumber,
} from "./_command.ts";
import { listStores, SHM_DIRECTORY, STORE_FILE_PREFIX } from "./stores.ts";
import { formatBytes, formatPercent, formatTable, formatTime, formatValue } from "./format.ts";
import { runTop } from "./top.ts";
import { dashboardCommand } from "./dashboard.ts";

/**
 * The commands, in the order `memalloc --help` lists them: each one's help text, arguments,
 * options, and the function that runs it.
 *
 * `dashboard` (a web page over the stores) is cli/dashboard.ts's command, after `top`.
 *
 * @example The command names
 * ```ts
 * import { COMMANDS } from "./commands.ts";
 *
 * console.log(Object.keys(COMMANDS).includes("stats")); // true
 * ```
 */
export const COMMANDS: Record<string, Command> = {
  stores: {
    summary: "every store on this machine: size, entries, usage, lock, created",
    usage: "stores [--json]",
    required: [],
    help: `Lists every memalloc store in ${SHM_DIRECTORY}, sorted by name, with its size, entries,
bytes used, usage and creation time. Each store is opened without creating anything and closed
again; a store that cannot be opened (another layout, another user's, ...) is listed with the
reason.

  --json   One JSON array: [{ name, stats }] or [{ name, error: { code, message } }]`,
    run: storesCommand,
  },
  stats: {
    summary: "a store's figures and counters, and its lock kind",
    usage: "stats NAME [--json]",
    required: ["NAME"],
    help: `Prints the store's figures (size, bytes used and free, largest free block, watermark,
entries), the counters every process shares (writes, hits, misses, hit ratio, evictions,
deletes, repairs), its lock kind and creation time. Writes nothing.
${STORE_RULE}

  --json   The figures as one JSON object (times in ms since the epoch)`,
    run: statsCommand,
  },
  keys: {
    summary: "the names in a store, oldest-written first",
    usage: "keys NAME [--prefix P] [--limit N] [--long] [--json]",
    required: ["NAME"],
    options: {
      prefix: { type: "string" },
      limit: { type: "string" },
      long: { type: "boolean", short: "l" },
    },
    help: `Prints the names in the store, one a line, oldest-written first (a name may hold a
newline: scripts take --json). Reads no value, so it counts no hit or miss.
${STORE_RULE}

  --prefix P   Only names that start with P
  --limit N    At most N names
  -l, --long   A table: name, kind, size, written, version
  --json       One JSON array of names (with --long: of { name, kind, size, created, written,
               version })`,
    run: keysCommand,
  },
  get: {
    summary: "the value of a key",
    usage: "get NAME KEY [--raw] [--json]",
    required: ["NAME", "KEY"],
    options: { raw: { type: "boolean" } },
    help: `Prints the value stored under KEY:
  - a string as it is;
  - bytes (Uint8Array) as lowercase hex, two digits a byte;
  - a value JSON represents exactly (numbers, booleans, null, arrays, plain objects) as JSON;
  - anything else (Map, Set, Date, bigint, undefined inside, NaN, typed arrays ...) as Node's
    util.inspect shows it, since JSON would change it.
A missing KEY exits 1 with a message on stderr. The read counts a hit (or a miss) in the
store's shared counters, as any read does.
${STORE_RULE}

  --raw    Strings and bytes exactly as stored, with no newline (other values as without it)
  --json   One JSON object { key, kind, encoding, value }: encoding "json" (value is the
           value), "hex" (bytes) or "inspect" (value is util.inspect's text); a missing KEY
           prints null (and exits 1)`,
    run: getCommand,
  },
  set: {
    summary: "write a value under a key",
    usage: "set NAME KEY VALUE [--ttl MS] [--json] [--create [--max-memory SIZE]]",
    required: ["NAME", "KEY", "VALUE"],
    options: {
      ttl: { type: "string" },
      create: { type: "boolean" },
      "max-memory": { type: "string" },
    },
    help: `Writes VALUE under KEY, as a string; with --json, VALUE is parsed as JSON and the
result written (a number, an object ...). Prints nothing. A VALUE that starts with "-" goes
after --: memalloc set NAME KEY -- -x.
${CREATE_RULE}

  --ttl MS            The entry expires MS milliseconds from now (or 30s, 5m, 2h, 1d); 0 is
                      no expiry; without it, the store's own default applies (none)
  --json              VALUE is JSON (here --json is about the input: set prints nothing)${CREATE_HELP}`,
    run: setCommand,
  },
  delete: {
    summary: "remove keys",
    usage: "delete NAME KEY... [--json]",
    required: ["NAME", "KEY"],
    repeat: true,
    help: `Removes each KEY and prints how many were removed. Exits 1 when any KEY was not there
(the others are removed all the same).
${STORE_RULE}

  --json   One JSON object { deleted: [keys], missing: [keys] }`,
    run: deleteCommand,
  },
  increment: {
    summary: "add to a number atomically",
    usage: "increment NAME KEY [DELTA] [--ttl MS] [--json] [--create [--max-memory SIZE]]",
    required: ["NAME", "KEY"],
    optional: ["DELTA"],
    options: {
      ttl: { type: "string" },
      create: { type: "boolean" },
      "max-memory": { type: "string" },
    },
    help: `Adds DELTA (default 1) to the number under KEY, as one step for every process, and
prints the result. A missing KEY counts from 0; a KEY that holds something other than a number
is an error. A negative DELTA goes after --: memalloc increment NAME KEY -- -5.
${CREATE_RULE}

  --ttl MS            A KEY that is missing (or expired) is created to expire MS milliseconds
                      from now (or 30s, 5m, 2h, 1d); an existing KEY keeps its own expiry
  --json              The result as a JSON number${CREATE_HELP}`,
    run: incrementCommand,
  },
  info: {
    summary: "a key's kind, size, times and version",
    usage: "info NAME KEY [--json]",
    required: ["NAME", "KEY"],
    help: `Prints how KEY's value is stored (string, bytes, number, json or cbor), its size, when
it was created, last written and expires, and its version, without reading the value: it counts
no hit or miss (it looks the key up among the names, as keys does). A missing KEY exits 1.
${STORE_RULE}

  --json   One JSON object { key, kind, size, created, written, version } (ms since the
           epoch); a missing KEY prints null (and exits 1)`,
    run: infoCommand,
  },
  clean: {
    summary: "evict the oldest entries down to the watermark",
    usage: "clean NAME [--json]",
    required: ["NAME"],
    help: `Evicts the oldest-written entries until usage is at the store's watermark, and prints
how many it evicted.
${STORE_RULE}

  --json   One JSON object { evicted }`,
    run: (input) => countCommand(input, (store) => store.clean(), "evicted"),
  },
  purge: {
    summary: "remove every entry",
    usage: "purge NAME [--json]",
    required: ["NAME"],
    help: `Removes every entry now (the counters are kept), and prints how many.
${STORE_RULE}

  --json   One JSON object { removed }`,
    run: (input) => countCommand(input, (store) => store.purge(), "removed"),
  },
  verify: {
    summary: "check a store's consistency",
    usage: "verify NAME [--json]",
    required: ["NAME"],
    help: `Checks the whole store (headers, heap, directory, write order) and prints each problem
found on a line of its own, exiting 1 when there is any; prints "ok" and exits 0 otherwise. The
check changes nothing, and the next write repairs what it finds. But opening a store (any
command's, any process's) repairs at once what a writer killed mid-write left, and a store
header out of range: verify reads the store's repair count before it opens it, and reports such
a repair as a problem too.
${STORE_RULE}

  --json   One JSON object { problems: [...] }`,
    run: verifyCommand,
  },
  unlink: {
    summary: "remove a store",
    usage: "unlink NAME [--json]",
    required: ["NAME"],
    help: `Removes the store's shared-memory object. Processes that have it open keep their copy
until they close it; the next open creates a new, empty store. A store that does not exist
exits 1. Prints nothing.

  --json   One JSON object { unlinked: true }`,
    run: unlinkCommand,
  },
  top: {
    summary: "a live view: operations per second, hit ratio, usage",
    usage: "top NAME [--interval MS] [--count N] [--json]",
    required: ["NAME"],
    options: {
      interval: { type: "string" },
      count: { type: "string" },
    },
    help: `Shows the store's figures every second: writes, hits, misses, evictions and deletes per
second (from the change in the shared counters), the hit ratio, and a usage bar (| marks the
watermark). On a terminal it redraws the screen until Ctrl-C; into a pipe or a file it prints
one line per refresh. Reads only the figures: it counts no read and writes nothing. Processes
add their hits and misses to the shared counters every 256 reads (and when they close), so
slow readers show up in steps.
${STORE_RULE}

  --interval MS   Time between refreshes (default 1000)
  --count N       Stop after N refreshes (default: until Ctrl-C)
  --json          One JSON object a line per refresh: { time, stats, perSecond, hitRatio }`,
    run: topCommand,
  },
  dashboard: dashboardCommand,
};

function storesCommand(input: Input): number {
  const { io } = input;
  const stores = listStores();
  if (input.json) {
    printJson(io, stores);
    return 0;
  }
  if (stores.length === 0) {
    print(io, `No memalloc stores in ${SHM_DIRECTORY}`);
    return 0;
  }
  const rows = [["NAME", "SIZE", "ENTRIES", "USED", "USAGE", "LOCK", "CREATED"]];
  const errors: string[] = [];
  for (const { name, stats, error } of stores) {
    if (stats === undefined) {
      rows.push([name, "-", "-", "-", "-", "-", `cannot open: ${error?.code ?? "?"}`]);
      errors.push(`${name}: ${oneLine(error?.message ?? "")}`);
      continue;
    }
    rows.push([
      name,
      formatBytes(stats.capacity),
      String(stats.entries),
      formatBytes(stats.bytesUsed),
      formatPercent(stats.bytesUsed / stats.capacity),
      stats.lockKind,
      formatTime(stats.createdAt),
    ]);
  }
  print(io, formatTable(rows, { right: [1, 2, 3, 4] }));
  if (errors.length > 0) print(io, `\n${errors.join("\n")}`);
  return 0;
}

function statsCommand(input: Input): number {
  using store = open(input);
  const stats = store.stats();
  if (input.json) {
    printJson(input.io, stats);
    return 0;
  }
  const reads = stats.hits + stats.misses;
  const ofCapacity = (bytes: number) =>
    `${formatBytes(bytes)} (${formatPercent(bytes / stats.capacity)})`;
  print(
    input.io,
    formatTable([
      ["store", stats.name],
      ["lock", stats.lockKind],
      ["created", formatTime(stats.createdAt)],
      ["size", `${formatBytes(stats.capacity)} (${stats.capacity} B)`],
      ["used", ofCapacity(stats.bytesUsed)],
      ["free", ofCapacity(stats.bytesFree)],
      ["largest free", formatBytes(stats.largestFree)],
      ["watermark", ofCapacity(stats.watermark)],
      ["entries", String(stats.entries)],
      ["writes", String(stats.writes)],
      ["hits", String(stats.hits)],
      ["misses", String(stats.misses)],
      ["hit ratio", reads > 0 ? formatPercent(stats.hits / reads) : "-"],
      ["evictions", String(stats.evictions)],
      ["deletes", String(stats.deletes)],
      ["repairs", String(stats.repairs)],
    ]),
  );
  return 0;
}

function keysCommand(input: Input): number {
  const { prefix, limit, long } = input.values;
  const options: { prefix?: string; limit?: number } = {};
  if (typeof prefix === "string") options.prefix = prefix;
  if (typeof limit === "string") options.limit = wholeNumber(input, "--limit", limit, 0);
  using store = open(input);
  if (long !== true) {
    const names = store.keys(options);
    if (input.json) printJson(input.io, names);
    else if (names.length > 0) print(input.io, names.join("\n"));
    return 0;
  }
  const entries = [...store.list(options)];
  if (input.json) {
    printJson(input.io, entries);
    return 0;
  }
  if (entries.length === 0) return 0;
  const rows = [["NAME", "KIND", "SIZE", "WRITTEN", "VERSION"]];
  for (const entry of entries) {
    rows.push([
      entry.name,
      entry.kind,
      formatBytes(entry.size),
      formatTime(entry.written),
      String(entry.version),
    ]);
  }
  print(input.io, formatTable(rows, { right: [2, 4] }));
  return 0;
}

function missing(input: Input, store: Memalloc, key: string): number {
  if (input.json) printJson(input.io, null);
  input.io.stderr(`memalloc: no entry "${key}" in store "${store.name}"\n`);
  return 1;
}

function getCommand(input: Input): number {
  const key = arg(input, 1);
  using store = open(input);
  const value = store.read(key);
  if (value === undefined) return missing(input, store, key);
  // From the value, not info(): info() would count a second hit. Numbers are stored as float64;
  // other values as JSON text or CBOR, which the names' walk tells (it counts no hit).
  const kind = typeof value === "string"
    ? "string"
    : value instanceof Uint8Array
    ? "bytes"
    : typeof value === "number"
    ? "number"
    : entryInfo(store, key)?.kind ?? "cbor";
  const formatted = formatValue(value);
  if (input.json) {
    const shown = formatted.encoding === "json" || formatted.encoding === "text"
      ? value
      : formatted.text;
    const encoding = formatted.encoding === "text" ? "json" : formatted.encoding;
    printJson(input.io, { key, kind, encoding, value: shown });
  } else if (input.values.raw === true && typeof value === "string") input.io.stdout(value);
  else if (input.values.raw === true && value instanceof Uint8Array) input.io.stdout(value);
  else print(input.io, formatted.text);
  return 0;
}

function setCommand(input: Input): number {
  const key = arg(input, 1);
  const text = arg(input, 2);
  let value: unknown = text;
  if (input.json) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw usage(input.command, `VALUE is not JSON (${(error as Error).message})`);
    }
  }
  const ttl = ttlOption(input);
  using store = open(input, true);
  store.write(key, value, ttl === undefined ? undefined : { ttl });
  return 0;
}

/** `--ttl`, in milliseconds, or `undefined` when it is not given. */
function ttlOption(input: Input): number | undefined {
  const text = input.values.ttl;
  return typeof text === "string" ? duration(input, "--ttl", text) : undefined;
}

function deleteCommand(input: Input): number {
  const keys = input.positionals.slice(1);
  using store = open(input);
  const deleted: string[] = [];
  const absent: string[] = [];
  for (const key of keys) (store.delete(key) ? deleted : absent).push(key);
  if (input.json) printJson(input.io, { deleted, missing: absent });
  else print(input.io, `deleted ${deleted.length} of ${keys.length}`);
  if (absent.length === 0) return 0;
  const list = absent.map((key) => `"${key}"`).join(", ");
  input.io.stderr(`memalloc: not in store "${store.name}": ${list}\n`);
  return 1;
}

function incrementCommand(input: Input): number {
  const key = arg(input, 1);
  const text = input.positionals[2];
  const delta = text === undefined ? 1 : Number(text);
  if (text !== undefined && (text.trim() === "" || !Number.isFinite(delta))) {
    throw usage(input.command, `DELTA must be a finite number, got "${text}"`);
  }
  const ttl = ttlOption(input);
  using store = open(input, true);
  const result = store.increment(key, delta, ttl === undefined ? undefined : { ttl });
  if (input.json) printJson(input.io, result);
  else print(input.io, String(result));
  return 0;
}

/**
 * An entry's metadata without counting a read: `Memalloc.info` counts a hit or a miss in the
 * shared counters (it is a read), `list` does not. The cost: a walk over the names that start
 * with `key`.
 */
function entryInfo(store: Memalloc, key: string): MemallocEntryInfo | undefined {
  for (const { name, ...info } of store.list({ prefix: key })) {
    if (name === key) return info;
  }
  return undefined;
}

function infoCommand(input: Input): number {
  const key = arg(input, 1);
  using store = open(input);
  const info = entryInfo(store, key);
  if (info === undefined) return missing(input, store, key);
  if (input.json) {
    printJson(input.io, { key, ...info });
    return 0;
  }
  print(
    input.io,
    formatTable([
      ["key", key],
      ["kind", info.kind],
      ["size", `${formatBytes(info.size)}${info.size >= 1024 ? ` (${info.size} B)` : ""}`],
      ["created", formatTime(info.created)],
      ["written", formatTime(info.written)],
      ["expires", info.expires === null ? "never" : formatTime(info.expires)],
      ["version", String(info.version)],
    ]),
  );
  return 0;
}

function countCommand(input: Input, act: (store: Memalloc) => number, what: string): number {
  using store = open(input);
  const count = act(store);
  if (input.json) printJson(input.io, { [what]: count });
  else print(input.io, `${what} ${count} ${count === 1 ? "entry" : "entries"}`);
  return 0;
}

/**
 * The repair count in a store's header, read from its file without opening the store (an open
 * repairs what an interrupted write or a damaged store header left); `undefined` when it cannot
 * be read.
 */
function repairsOnFile(name: string): number | undefined {
  if (name.includes("/")) return undefined; // not a store name: the open reports it
  try {
    const fd = openSync(`${SHM_DIRECTORY}/${STORE_FILE_PREFIX}${name}`, "r");
    try {
      const word = new Uint8Array(4);
      if (readSync(fd, word, 0, 4, ST_REPAIRS) !== 4) return undefined;
      return new DataView(word.buffer).getUint32(0, true);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function verifyCommand(input: Input): number {
  const before = repairsOnFile(arg(input, 0));
  using store = open(input);
  const problems = store.verify();
  const repaired = before === undefined ? 0 : store.stats().repairs - before;
  const found = problems.length;
  if (repaired > 0) {
    problems.unshift(
      `opening the store repaired it (an interrupted write, or a damaged store header): ${repaired} repair${
        repaired === 1 ? "" : "s"
      } before the check`,
    );
  }
  if (input.json) printJson(input.io, { problems });
  else print(input.io, problems.length === 0 ? "ok" : problems.join("\n"));
  if (problems.length === 0) return 0;
  const count = `${found} ${found === 1 ? "problem" : "problems"}`;
  input.io.stderr(
    found === 0
      ? `memalloc: store "${store.name}" needed a repair, which opening it did\n`
      : `memalloc: store "${store.name}" has ${count}; the next write repairs ${
        found === 1 ? "it" : "them"
      }\n`,
  );
  return 1;
}

function unlinkCommand(input: Input): number {
  const name = arg(input, 0);
  if (!Memalloc.unlink(name)) {
    throw new MemallocError(`Cannot unlink store "${name}": there is no such store`, {
      code: "ERR_MEMALLOC_NOT_FOUND",
      store: name,
    });
  }
  if (input.json) printJson(input.io, { unlinked: true });
  return 0;
}

async function topCommand(input: Input): Promise<number> {
  const { interval, count } = input.values;
  const options: { interval?: number; count?: number; json: boolean; signal?: AbortSignal } = {
    json: input.json,
  };
  if (typeof interval === "string") {
    options.interval = wholeNumber(input, "--interval", interval, 1);
  }
  if (typeof count === "string") options.count = wholeNumber(input, "--count", count, 1);
  using store = open(input);
  const stop = new AbortController();
  options.signal = stop.signal;
  const untrap = input.io.trapSignals?.(() => stop.abort());
  try {
    const { io } = input;
    const output: { write(text: string): void; isTTY: boolean; columns?: number } = {
      write: (text) => io.stdout(text),
      isTTY: io.isTTY,
    };
    if (io.columns !== undefined) output.columns = io.columns;
    await runTop(store, output, options);
  } finally {
    untrap?.();
  }
  return 0;
}
