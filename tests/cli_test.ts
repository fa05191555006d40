/**
 * The `memalloc` command end to end: every command spawned as a real process on real stores,
 * its output, `--json`, exit codes and stderr. Under each test runner the command runs on the
 * same runtime (so `deno test`, `bun test` and `node --test` together cover the three), and one
 * test passes a store between all three.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { Memalloc } from "../mod.ts";
import { ST_AUTOCLEAN, ST_ENTRIES } from "../allocator/layout.ts";
import { COMMANDS } from "../cli/commands.ts";
import { main } from "../cli/main.ts";
import { runTop } from "../cli/top.ts";
import { runtime, test } from "./_harness.ts";
import { type ChildRuntime, commandFor, run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const CLI = "../cli/main.ts";
/** The command runs on the test runner's own runtime. */
const HERE = runtime as ChildRuntime;
const KiB = 1024;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `memalloc args...` to its end, whatever its exit code. */
function cli(args: string[], on: ChildRuntime = HERE): Promise<Result> {
  return run(on, CLI, args, { allowFailure: true });
}

/** Runs `main(args)` in this process, with its output captured: for the cases that need no spawn. */
async function inProcess(args: string[]): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (data) => (stdout += typeof data === "string" ? data : new TextDecoder().decode(data)),
    stderr: (text) => (stderr += text),
    isTTY: false,
  });
  return { code, stdout, stderr };
}

function show(result: Result): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** Asserts the exit code, and that stderr is one line matching `pattern`. */
function failed(result: Result, code: 1 | 2, pattern: RegExp): void {
  assert.equal(result.code, code, show(result));
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr:\n${show(result)}`);
  assert.match(lines[0]!, pattern, show(result));
}

function ok(result: Result): string {
  assert.equal(result.code, 0, show(result));
  assert.equal(result.stderr, "", show(result));
  return result.stdout;
}

/** A fresh store of 1 MiB with `fill` written, removed afterwards. */
async function withStore(
  fill: (store: Memalloc) => void,
  body: (name: string) => Promise<void>,
): Promise<void> {
  const name = uniqueName("cli");
  try {
    using store = Memalloc.open(name, { maxMemory: 1024 * KiB });
    fill(store);
    store.close();
    await body(name);
  } finally {
    Memalloc.unlink(name);
  }
}

function statsOf(name: string) {
  using store = Memalloc.open(name, { create: false });
  return store.stats();
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Waited ${ms} ms for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Runs `memalloc args...` and returns its standard output as bytes. */
function cliBytes(args: string[]): Promise<{ code: number | null; stdout: Uint8Array }> {
  const argv = commandFor(HERE, CLI, args);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    child.stdout!.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: new Uint8Array(Buffer.concat(chunks)) }));
  });
}

test("memalloc --help lists every command; help get and get --help print its usage; exit 0", async () => {
  const [overview, help, flag] = await Promise.all([
    cli(["--help"]),
    inProcess(["help", "get"]),
    inProcess(["get", "--help"]),
  ]);
  const text = ok(overview);
  for (const name of Object.keys(COMMANDS)) {
    assert.match(text, new RegExp(`^  ${name} `, "m"), `${name} is listed`);
  }
  assert.match(text, /Exit codes: 0 done; 1 the command failed.*2 the command line is\s+wrong/s);
  assert.match(text, /No command creates a store, except set and increment given --create/);
  assert.match(ok(help), /^Usage: memalloc get NAME KEY \[--raw\] \[--json\]\n/);
  assert.match(help.stdout, /util\.inspect/);
  assert.equal(ok(flag), help.stdout);
});

test("memalloc usage errors exit 2 with one line naming the problem and --help, before opening any store", async () => {
  const name = uniqueName("cli-usage");
  const cases: [string[], RegExp][] = [
    [[], /^memalloc: no command given \(see memalloc --help\)$/],
    [["frob"], /^memalloc: unknown command "frob" \(see memalloc --help\)$/],
    [
      ["keys", name, "--frob"],
      /^memalloc keys: unknown option --frob \(see memalloc keys --help\)$/,
    ],
    [["keys", name, "--limit", "x"], /^memalloc keys: --limit must be a whole number .* "x"/],
    [["get", name], /^memalloc get: missing KEY \(see memalloc get --help\)$/],
    [["info", name, "k", "extra"], /^memalloc info: unexpected argument "extra" \(see/],
    [["keys", name, "--limit"], /^memalloc keys: option --limit needs a value/],
    [["stats", name, "--json=yes"], /^memalloc stats: option --json takes no value/],
    [["increment", name, "k", "-5"], /unknown option -5: a negative number goes after --/],
    [["increment", name, "k", "ten"], /^memalloc increment: DELTA must be a finite number/],
    [["top", name, "--count", "0"], /^memalloc top: --count must be a whole number from 1 up/],
    [["top", name, "--interval", "1.5"], /^memalloc top: --interval must be a whole number/],
    [["set", name, "k", "v", "--max-memory", "1M"], /--max-memory applies .*: add --create/],
    [["set", name, "k", "{", "--json", "--create"], /^memalloc set: VALUE is not JSON/],
    [["set", name, "k", "v", "--create", "--max-memory", "lots"], /--max-memory must be/],
    [["set", name, "k", "v", "--ttl", "5x"], /^memalloc set: --ttl must be a whole number of/],
    [["increment", name, "k", "--ttl", "-1"], /^memalloc increment: option --ttl needs a value/],
    [["help", "frob"], /^memalloc: unknown command "frob"/],
  ];
  // The first two as real processes, all of them through main() in this process.
  const spawned = await Promise.all(cases.slice(0, 2).map(([args]) => cli(args)));
  const inside = await Promise.all(cases.map(([args]) => inProcess(args)));
  const checks = [
    ...spawned.map((result, i) => [result, i] as const),
    ...inside.map((result, i) => [result, i] as const),
  ];
  for (const [result, i] of checks) {
    failed(result, 2, cases[i]![1]);
    assert.match(result.stderr, /--help/);
    assert.equal(result.stdout, "", show(result));
  }
  assert.equal(Memalloc.exists(name), false, "no store was created");
});

test("memalloc on a missing store exits 1 with one line, and no command creates it without --create", async () => {
  const name = uniqueName("cli-missing");
  const commands = [
    ["stats", name],
    ["set", name, "k", "v"],
    ["get", name, "k"],
    ["increment", name, "k"],
    ["keys", name],
    ["info", name, "k"],
    ["delete", name, "k"],
    ["verify", name],
    ["clean", name],
    ["purge", name],
    ["top", name, "--count", "1"],
  ];
  // The first two as real processes, all of them through main() in this process.
  const spawned = await Promise.all(commands.slice(0, 2).map((args) => cli(args)));
  const inside = await Promise.all(commands.map((args) => inProcess(args)));
  const checks = [
    ...spawned.map((result, i) => [result, i] as const),
    ...inside.map((result, i) => [result, i] as const),
  ];
  for (const [result, i] of checks) {
    failed(result, 1, /^memalloc: Cannot open store ".*": there is no such store/);
    const command = commands[i]![0]!;
    if (command === "set" || command === "increment") {
      assert.match(result.stderr, /add --create to create it$/m);
    }
  }
  failed(await inProcess(["unlink", name]), 1, /^memalloc: Cannot unlink store ".*": there is no/);
  assert.equal(Memalloc.exists(name), false, "no store was created");
});

test("memalloc set --create makes a store of --max-memory; set and get round-trip strings, JSON and other values", async () => {
  const name = uniqueName("cli-set");
  try {
    ok(await cli(["set", name, "greeting", "Foobar", "--create", "--max-memory", "256K"]));
    await Promise.all([
      inProcess(["set", name, "n", "42", "--json"]),
      inProcess(["set", name, "s", "42"]),
      cli(["set", name, "obj", '{"user":42,"roles":["admin"],"none":null}', "--json"]),
    ]).then((results) => results.forEach((result) => assert.equal(ok(result), "")));
    {
      using store = Memalloc.open(name, { create: false });
      assert.equal(store.maxMemory, 256 * KiB);
      assert.equal(store.read("greeting"), "Foobar");
      assert.equal(store.read("n"), 42);
      assert.equal(store.read("s"), "42");
      assert.deepEqual(store.read("obj"), { user: 42, roles: ["admin"], none: null });
      store.write("map", new Map([["a", 1]]));
      store.write("when", { at: new Date(0), big: 10n });
    }
    const before = statsOf(name);
    const [greeting, n, obj, objJson, map, mapJson, when, missing, missingJson] = await Promise
      .all([
        cli(["get", name, "greeting"]),
        inProcess(["get", name, "n"]),
        inProcess(["get", name, "obj"]),
        inProcess(["get", name, "obj", "--json"]),
        cli(["get", name, "map"]),
        inProcess(["get", name, "map", "--json"]),
        inProcess(["get", name, "when"]),
        cli(["get", name, "nope"]),
        inProcess(["get", name, "nope", "--json"]),
      ]);
    assert.equal(ok(greeting), "Foobar\n");
    assert.equal(ok(n), "42\n");
    assert.deepEqual(JSON.parse(ok(obj)), { user: 42, roles: ["admin"], none: null });
    assert.deepEqual(JSON.parse(ok(objJson)), {
      key: "obj",
      kind: "records",
      encoding: "json",
      value: { user: 42, roles: ["admin"], none: null },
    });
    assert.equal(ok(map), "Map(1) { 'a' => 1 }\n");
    assert.deepEqual(JSON.parse(ok(mapJson)), {
      key: "map",
      kind: "cbor",
      encoding: "inspect",
      value: "Map(1) { 'a' => 1 }",
    });
    assert.equal(ok(when), "{ at: 1970-01-01T00:00:00.000Z, big: 10n }\n");
    failed(missing, 1, /^memalloc: no entry "nope" in store ".*"$/);
    assert.equal(missing.stdout, "");
    failed(missingJson, 1, /^memalloc: no entry "nope"/);
    assert.equal(missingJson.stdout, "null\n");
    // Each get is one read: 7 hits, 2 misses in the shared counters; nothing else changed.
    const after = statsOf(name);
    assert.equal(after.hits - before.hits, 7);
    assert.equal(after.misses - before.misses, 2);
    assert.equal(after.writes, before.writes);
  } finally {
    Memalloc.unlink(name);
  }
});

test("memalloc get prints bytes as hex, and --raw writes the stored bytes and text unchanged", async () => {
  const bytes = new Uint8Array([0, 1, 0x7f, 0x80, 0xff, 10, 13]);
  await withStore((store) => {
    store.write("bytes", bytes);
    store.write("text", "héllo\nworld");
  }, async (name) => {
    const [hex, raw, text] = await Promise.all([
      inProcess(["get", name, "bytes"]),
      cliBytes(["get", name, "bytes", "--raw"]),
      cliBytes(["get", name, "text", "--raw"]),
    ]);
    assert.equal(ok(hex), "00017f80ff0a0d\n");
    assert.equal(raw.code, 0);
    assert.deepEqual(raw.stdout, bytes);
    assert.equal(text.code, 0);
    assert.deepEqual(text.stdout, new TextEncoder().encode("héllo\nworld"));
  });
});

test("memalloc keys, info and stats list, describe and count without reading a value or writing", async () => {
  await withStore((store) => {
    store.write("user:1", { name: "Ada" });
    store.write("session:1", "s");
    store.write("user:2", new Uint8Array(2000));
    store.write("user:3", 7);
  }, async (name) => {
    const before = statsOf(name);
    const results = await Promise.all([
      cli(["keys", name]),
      inProcess(["keys", name, "--prefix", "user:", "--limit", "2", "--json"]),
      inProcess(["keys", name, "--long", "--prefix", "user:"]),
      inProcess(["info", name, "user:2"]),
      inProcess(["info", name, "user:1", "--json"]),
      inProcess(["info", name, "user:"]),
      cli(["stats", name]),
      inProcess(["stats", name, "--json"]),
    ]);
    const [keys, keysJson, long, info, infoJson, infoMissing, stats, statsJson] = results;
    assert.equal(ok(keys!), "user:1\nsession:1\nuser:2\nuser:3\n");
    assert.deepEqual(JSON.parse(ok(keysJson!)), ["user:1", "user:2"]);
    const rows = ok(long!).trimEnd().split("\n");
    assert.match(rows[0]!, /^NAME\s+KIND\s+SIZE\s+WRITTEN\s+VERSION$/);
    assert.equal(rows.length, 4);
    assert.match(rows[2]!, /^user:2\s+bytes\s+2\.0 KiB\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+3$/);
    assert.match(
      ok(info!),
      /^key\s+user:2\nkind\s+bytes\nsize\s+2\.0 KiB \(2000 B\)\ncreated\s+\d{4}-/,
    );
    const described = JSON.parse(ok(infoJson!));
    assert.equal(described.key, "user:1");
    assert.equal(described.kind, "records");
    assert.equal(described.version, 1);
    assert.ok(described.written >= before.createdAt);
    failed(infoMissing!, 1, /^memalloc: no entry "user:" in store/);
    const table = ok(stats!);
    assert.match(table, /^store\s+test-/m);
    assert.match(table, /^lock\s+(mutex|flock)$/m);
    assert.match(table, /^size\s+1\.0 MiB \(1048576 B\)$/m);
    assert.match(table, /^entries\s+4$/m);
    assert.match(table, /^writes\s+4$/m);
    assert.match(table, /^created\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/m);
    const figures = JSON.parse(ok(statsJson!));
    assert.equal(figures.name, name);
    assert.equal(figures.entries, 4);
    assert.equal(figures.capacity, 1024 * KiB);
    assert.equal(figures.lockKind, before.lockKind);
    assert.equal(figures.createdAt, before.createdAt);
    // None of them counted a read or wrote anything.
    assert.deepEqual(statsOf(name), before);
  });
});

test("memalloc increment, delete, clean and purge change the store and print what they did", async () => {
  await withStore((store) => {
    store.write("a", "1");
    store.write("b", "2");
    store.write("c", "3");
  }, async (name) => {
    const [first, notNumber] = await Promise.all([
      cli(["increment", name, "views"]),
      inProcess(["increment", name, "a"]),
    ]);
    assert.equal(ok(first), "1\n");
    failed(notNumber, 1, /^memalloc: Cannot increment "a": .*not a number/);
    assert.equal(ok(await inProcess(["increment", name, "views", "10", "--json"])), "11\n");
    const [third, partly, deleted] = await Promise.all([
      cli(["increment", name, "views", "--", "-2.5"]),
      cli(["delete", name, "a", "b", "nope"]),
      inProcess(["delete", name, "c", "--json"]),
    ]);
    assert.equal(ok(third), "8.5\n");
    failed(partly, 1, /^memalloc: not in store ".*": "nope"$/);
    assert.equal(partly.stdout, "deleted 2 of 3\n");
    assert.deepEqual(JSON.parse(ok(deleted)), { deleted: ["c"], missing: [] });
    {
      using store = Memalloc.open(name, { create: false });
      assert.deepEqual(store.keys(), ["views"]);
      assert.equal(store.read("views"), 8.5);
    }
    assert.deepEqual(JSON.parse(ok(await inProcess(["clean", name, "--json"]))), { evicted: 0 });
    assert.equal(ok(await inProcess(["purge", name])), "removed 1 entry\n");
    assert.equal(statsOf(name).entries, 0);
  });
});

test("memalloc set --ttl and increment --ttl write entries that expire; info shows when", async () => {
  await withStore(() => {}, async (name) => {
    const before = Date.now();
    const [set, counted, forever] = await Promise.all([
      cli(["set", name, "session", "abc", "--ttl", "1500ms"]),
      inProcess(["increment", name, "hits", "--ttl", "1m"]),
      inProcess(["set", name, "config", "on", "--ttl", "0"]),
    ]);
    assert.equal(ok(set), "");
    assert.equal(ok(counted), "1\n");
    assert.equal(ok(forever), "");
    const session = JSON.parse(ok(await inProcess(["info", name, "session", "--json"])));
    assert.ok(session.expires >= before + 1500 && session.expires <= Date.now() + 1500, show(set));
    const hits = JSON.parse(ok(await inProcess(["info", name, "hits", "--json"])));
    assert.ok(hits.expires >= before + 60_000 && hits.expires <= Date.now() + 60_000);
    assert.match(ok(await inProcess(["info", name, "config"])), /^expires +never$/m);
    // An existing counter keeps its expiry: --ttl only applies to one it creates.
    assert.equal(ok(await inProcess(["increment", name, "hits", "--ttl", "2h"])), "2\n");
    const again = JSON.parse(ok(await inProcess(["info", name, "hits", "--json"])));
    assert.equal(again.expires, hits.expires);
    {
      using store = Memalloc.open(name, { create: false });
      const wait = store.info("session")!.expires! - Date.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait) + 20));
    }
    failed(await cli(["get", name, "session"]), 1, /^memalloc: no entry "session" in store/);
    assert.equal(ok(await inProcess(["get", name, "config"])), "on\n");
  });
});
test("memalloc verify prints ok on a sound store, lists the problems of a damaged one and exits 1, and reports a repair its open made", async () => {
  await withStore((store) => {
    for (let i = 0; i < 20; i++) store.write(`k${i}`, `value ${i}`);
  }, async (name) => {
    assert.equal(ok(await cli(["verify", name])), "ok\n");
    // The entry count in the store header, one too low: opening the store does not repair
    // it (only a mutation does), so verify sees it.
    const fd = openSync(`/dev/shm/memalloc.${name}`, "r+");
    try {
      const word = new Uint8Array(4);
      readSync(fd, word, 0, 4, ST_ENTRIES);
      const view = new DataView(word.buffer);
      assert.equal(view.getUint32(0, true), 20);
      view.setUint32(0, 19, true);
      writeSync(fd, word, 0, 4, ST_ENTRIES);
    } finally {
      closeSync(fd);
    }
    const [damaged, json] = await Promise.all([
      cli(["verify", name]),
      inProcess(["verify", name, "--json"]),
    ]);
    failed(damaged, 1, /^memalloc: store ".*" has \d+ problems?; the next write repairs it$/);
    assert.match(damaged.stdout, /header counts 19/);
    assert.doesNotMatch(damaged.stdout, /^ok$/m);
    const { problems } = JSON.parse(json.stdout);
    assert.equal(json.code, 1);
    assert.deepEqual(problems, damaged.stdout.trimEnd().split("\n"));
    // A watermark out of range: the open repairs it before verify looks, and verify says so.
    const bad = new Uint8Array(8);
    new DataView(bad.buffer).setFloat64(0, Number.NaN, true);
    const header = openSync(`/dev/shm/memalloc.${name}`, "r+");
    try {
      writeSync(header, bad, 0, 8, ST_AUTOCLEAN);
    } finally {
      closeSync(header);
    }
    const repaired = await inProcess(["verify", name]);
    failed(repaired, 1, /^memalloc: store ".*" needed a repair, which opening it did$/);
    assert.match(
      repaired.stdout,
      /^opening the store repaired it .*: 1 repair before the check\n$/,
    );
    assert.equal(statsOf(name).repairs, 1);
    assert.equal(ok(await inProcess(["verify", name])), "ok\n");
  });
});

test("memalloc unlink removes a store and exits 1 when there is none", async () => {
  await withStore(() => {}, async (name) => {
    assert.deepEqual(JSON.parse(ok(await cli(["unlink", name, "--json"]))), { unlinked: true });
    assert.equal(Memalloc.exists(name), false);
    failed(
      await inProcess(["unlink", name]),
      1,
      /^memalloc: Cannot unlink store ".*": there is no/,
    );
  });
});

test("memalloc stores lists a store with its size, entries and usage, as a table and as JSON", async () => {
  await withStore((store) => {
    store.write("a", "x".repeat(10 * KiB));
    store.write("b", "y");
  }, async (name) => {
    const [table, json] = await Promise.all([cli(["stores"]), inProcess(["stores", "--json"])]);
    const lines = ok(table).split("\n");
    assert.match(lines[0]!, /^NAME\s+SIZE\s+ENTRIES\s+USED\s+USAGE\s+LOCK\s+CREATED$/);
    const row = lines.find((line) => line.startsWith(`${name} `));
    assert.ok(row, `a row for ${name}:\n${table.stdout}`);
    assert.match(row, /\s1\.0 MiB\s+2\s+\d+\.\d KiB\s+\d+\.\d%\s+(mutex|flock)\s+\d{4}-\d\d-\d\dT/);
    const listed = (JSON.parse(ok(json)) as { name: string; stats?: { entries: number } }[])
      .find((store) => store.name === name);
    assert.equal(listed?.stats?.entries, 2);
  });
});

test("memalloc top into a pipe prints one plain line a refresh, rates from the second; --json one object a line", async () => {
  await withStore((store) => store.write("k", "v"), async (name) => {
    using writer = Memalloc.open(name, { create: false });
    let i = 0;
    const timer = setInterval(() => {
      for (let j = 0; j < 10; j++) writer.write(`w${i++ % 50}`, "x");
    }, 5);
    try {
      const [plain, json] = await Promise.all([
        cli(["top", name, "--count", "2", "--interval", "300"]),
        inProcess(["top", name, "--count", "2", "--interval", "300", "--json"]),
      ]);
      const lines = ok(plain).trimEnd().split("\n");
      assert.equal(lines.length, 2, plain.stdout);
      assert.ok(!plain.stdout.includes("\x1b"), "no escape sequences into a pipe");
      assert.match(lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z ${name} entries=\\d+ `));
      assert.match(lines[0]!, / writes\/s=- hits\/s=- misses\/s=- evictions\/s=- deletes\/s=- /);
      const writes = Number(/ writes\/s=([\d.]+) /.exec(lines[1]!)?.[1]);
      assert.ok(writes > 0, lines[1]);
      assert.match(lines[1]!, / usage=\d+\.\d% /);
      const samples = ok(json).trimEnd().split("\n").map((line) => JSON.parse(line));
      assert.equal(samples.length, 2);
      assert.equal(samples[0].perSecond, null);
      assert.equal(samples[0].stats.name, name);
      assert.ok(samples[1].perSecond.writes > 0, json.stdout);
    } finally {
      clearInterval(timer);
    }
  });
});

test("memalloc top on a terminal hides the cursor, redraws in place and shows the cursor again", async () => {
  await withStore((store) => store.write("k", "v"), async (name) => {
    const command = commandFor(HERE, CLI, ["top", name, "--count", "2", "--interval", "50"])
      .map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
    // script(1) runs the command on a pseudo-terminal.
    const result = await run(HERE, "", [], {
      command: ["script", "--quiet", "--return", "--command", command, "/dev/null"],
      allowFailure: true,
    });
    assert.equal(result.code, 0, show(result));
    const screen = result.stdout;
    assert.ok(screen.startsWith("\x1b[?25l\x1b[H\x1b[2J"), JSON.stringify(screen.slice(0, 40)));
    assert.equal(screen.split("\x1b[H\x1b[2J").length - 1, 2, "two redraws");
    assert.ok(screen.trimEnd().endsWith("\x1b[?25h"), "the cursor is shown again");
    assert.match(screen, /usage {2}\[#*\.*\|?\.*\] \d+\.\d% of 1\.0 MiB/);
    assert.match(screen, /writes\s+1\s+-/);
  });
});

test("memalloc top ends with exit 0 on SIGINT and when its reader closes the pipe; runTop shows the cursor again when aborted", async () => {
  await withStore(() => {}, async (name) => {
    const interrupted = start(HERE, CLI, ["top", name, "--interval", "50"]);
    const closed = start(HERE, CLI, ["top", name, "--interval", "20"]);
    try {
      await interrupted.waitForLine((line) => line.includes(name));
      interrupted.kill("SIGINT");
      await closed.waitForLine((line) => line.includes(name));
      closed.process.stdout!.destroy(); // as `| head -1` does: the next write is EPIPE
      const ends = Promise.all([interrupted.exited, closed.exited]);
      for (const result of await within(ends, 15_000, "top to end")) {
        assert.equal(result.code, 0, show({ ...result }));
        assert.equal(result.stderr, "");
      }
    } finally {
      interrupted.kill();
      closed.kill();
    }
    // On a terminal, the same end restores the cursor.
    using store = Memalloc.open(name, { create: false });
    const stop = new AbortController();
    let screen = "";
    const view = runTop(store, { write: (text) => (screen += text), isTTY: true }, {
      interval: 20,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 70);
    await view;
    assert.ok(screen.startsWith("\x1b[?25l"));
    assert.ok(screen.endsWith("\x1b[?25h"));
    assert.ok(screen.split("\x1b[H\x1b[2J").length - 1 >= 2, "redrawn until aborted");
  });
});

test("memalloc under deno, bun and node: a store one creates, the next increments in and the last reads", async () => {
  const name = uniqueName("cli-cross");
  try {
    // deno writes and creates, bun reads it and counts, node reads bun's count.
    const [first, second, third] = RUNTIMES;
    ok(await cli(["set", name, "from", first, "--create", "--max-memory", "64K"], first));
    assert.equal(ok(await cli(["increment", name, "count", "--", "-3"], second)), "-3\n");
    assert.equal(ok(await cli(["get", name, "count"], third)), "-3\n");
    using store = Memalloc.open(name, { create: false });
    assert.equal(store.read("from"), first);
    const stats = store.stats();
    assert.equal(stats.capacity, 64 * KiB);
    assert.equal(stats.writes, 2);
    assert.equal(stats.hits, 2, "the read by the third, and the one just above");
  } finally {
    Memalloc.unlink(name);
  }
});
