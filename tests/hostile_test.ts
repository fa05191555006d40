// Hostile input and system limits (issue 6): every bad argument is refused with the error that
// names it, and a refused call changes nothing: not the store's entries, figures or bytes, not
// /dev/shm.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { Memalloc, MemallocError } from "../mod.ts";
import { test } from "./_harness.ts";
import { type ChildResult, OTHER_UID, prepareOtherUser } from "./_other_user.ts";
import { isRoot, run, RUNTIMES, start, uniqueName } from "./_spawn.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!);
const utf8Length = (text: string) => new TextEncoder().encode(text).length;
const segmentBytes = (store: string) => readFileSync(`/dev/shm/memalloc.${store}`);
const nobody = { uid: OTHER_UID, gid: OTHER_UID };

/** One hostile argument: what it is, the value, and the exact error it must raise. */
type Case = [label: string, value: unknown, type: ErrorConstructor, message: string];

/** The /dev/shm entries this process's names could make (bad names coerced to strings too). */
function ourShmEntries(): string[] {
  return readdirSync("/dev/shm").filter((file) =>
    file.includes(`-${process.pid}-`) ||
    /^memalloc\.(|null|undefined|\d+|\[object Object\]|Symbol\(.*\))$/.test(file)
  ).sort();
}

/** Asserts that `call` throws exactly `type` with exactly `message`. */
function assertThrows(call: () => unknown, type: ErrorConstructor, message: string, at: string) {
  assert.throws(call, (error: unknown) => {
    assert.equal((error as Error)?.constructor, type, `${at}: ${error}`);
    assert.equal((error as Error).message, message, at);
    return true;
  });
}

/** Entries every store starts with; a refused call must leave them as they are. */
const SEED: Record<string, unknown> = {
  keep: "kept",
  bytes: new Uint8Array([1, 2, 3]),
  object: { a: [1, { b: null }], when: new Date(0) },
};

/** Opens a fresh store holding {@linkcode SEED}, runs `body`, checks SEED, removes the store. */
async function withStore(
  options: { maxMemory?: number; autoclean?: number },
  body: (store: Memalloc) => void | Promise<void>,
): Promise<void> {
  const name = uniqueName("hostile");
  const store = Memalloc.open(name, { maxMemory: 256 * KiB, ...options });
  try {
    for (const [key, value] of Object.entries(SEED)) store.write(key, value);
    await body(store);
    for (const [key, value] of Object.entries(SEED)) {
      assert.deepStrictEqual(store.read(key), value, `entry ${key} survived`);
    }
  } finally {
    store.close();
    Memalloc.unlink(name);
  }
}

/** The figures a refused call must not move (hits and misses aside: reads count those). */
function figures(store: Memalloc) {
  const { entries, bytesUsed, writes, evictions, deletes, repairs } = store.stats();
  return { entries, bytesUsed, writes, evictions, deletes, repairs };
}

/** Runs `hostile` and checks that the segment's bytes and the store's figures did not change. */
function assertUnchanged(store: Memalloc, hostile: () => void): void {
  const before = figures(store); // flushes this process's read counts first
  const bytes = segmentBytes(store.name);
  hostile();
  assert.ok(segmentBytes(store.name).equals(bytes), "the segment's bytes changed");
  assert.deepEqual(figures(store), before);
  assert.deepEqual(store.verify(), []);
}

// ---------------------------------------------------------------------------------------------
// Names

test("Memalloc.write, read, delete and info: a bad entry name is a TypeError or RangeError naming the problem, and changes nothing", async () => {
  const notString = (what: string) => `Entry name must be a string, got ${what}`;
  const surrogate = (name: string) => `Entry name "${name}" contains a lone surrogate`;
  const tooLong = (name: string) =>
    `Entry name "${name.slice(0, 32)}..." is ${utf8Length(name)} bytes long, the limit is 250`;
  const long = (
    name: string,
  ): Case => [`${utf8Length(name)} bytes`, name, RangeError, tooLong(name)];
  const cases: Case[] = [
    ["empty", "", TypeError, "Entry name must not be empty"],
    long("n".repeat(251)),
    long("€".repeat(84)), // 84 UTF-16 units, 252 UTF-8 bytes
    long("😀".repeat(63)), // 126 UTF-16 units, 252 UTF-8 bytes
    long("é".repeat(125) + "x"), // 126 UTF-16 units, 251 UTF-8 bytes
    ["number", 17, TypeError, notString("number")],
    ["undefined", undefined, TypeError, notString("undefined")],
    ["null", null, TypeError, notString("null")],
    [
      "object that stringifies to a stored name",
      { toString: () => "keep" },
      TypeError,
      notString("Object"),
    ],
    ["String object", new String("keep"), TypeError, notString("String")],
    ["symbol", Symbol("keep"), TypeError, notString("symbol")],
    ["lone high surrogate", "keep\uD800", TypeError, surrogate("keep\uD800")],
    ["lone low surrogate", "\uDC00keep", TypeError, surrogate("\uDC00keep")],
    ["surrogates in the wrong order", "\uDC00\uD800", TypeError, surrogate("\uDC00\uD800")],
  ];
  await withStore({}, (store) => {
    assertUnchanged(store, () => {
      for (const [label, name, type, message] of cases) {
        const bad = name as string;
        assertThrows(() => store.write(bad, "v"), type, message, `write ${label}`);
        assertThrows(() => store.read(bad), type, message, `read ${label}`);
        assertThrows(() => store.delete(bad), type, message, `delete ${label}`);
        assertThrows(() => store.info(bad), type, message, `info ${label}`);
      }
    });
    // The limits are exact: 250 UTF-8 bytes pass, and so do NUL, "/" and surrogate pairs.
    const valid = ["n".repeat(250), "€".repeat(83) + "x", "😀".repeat(62) + "xx", "a\0/b", "😀"];
    for (const name of valid) {
      store.write(name, name);
      assert.equal(store.read(name), name, `read ${JSON.stringify(name)}`);
      assert.equal(store.info(name)?.size, utf8Length(name));
      assert.equal(store.delete(name), true);
    }
  });
});

test("Memalloc.open, unlink and exists: a bad store name is a TypeError or RangeError naming the problem, and creates nothing in /dev/shm", () => {
  const tag = uniqueName("hostile-name");
  const notString = (what: string) => `Store name must be a string, got ${what}`;
  const quoted = (name: string) => `Store name "${name}"`;
  const long = (name: string): Case => [
    `${utf8Length(name)} bytes in ${name.length} UTF-16 units`,
    name,
    RangeError,
    `${quoted(`${name.slice(0, 40)}...`)} is ${utf8Length(name)} bytes long, the limit is 246`,
  ];
  const wide = `${tag}-`.padEnd(160, "é");
  assert.ok(wide.length < 246 && utf8Length(wide) > 246, "short in UTF-16, too long in UTF-8");
  const cases: Case[] = [
    ["empty", "", TypeError, "Store name must not be empty"],
    long(`${tag}-`.padEnd(247, "n")),
    long(wide),
    ["a slash", `${tag}/x`, TypeError, `${quoted(`${tag}/x`)} must not contain "/"`],
    ["a path", `../${tag}`, TypeError, `${quoted(`../${tag}`)} must not contain "/"`],
    ["NUL", `${tag}\0`, TypeError, `${quoted(`${tag}\0`)} must not contain NUL`],
    [
      "lone high surrogate",
      `${tag}\uD800`,
      TypeError,
      `${quoted(`${tag}\uD800`)} contains a lone surrogate`,
    ],
    [
      "lone low surrogate",
      `\uDC00${tag}`,
      TypeError,
      `${quoted(`\uDC00${tag}`)} contains a lone surrogate`,
    ],
    ["number", 42, TypeError, notString("42")],
    ["null", null, TypeError, notString("null")],
    ["object that stringifies to a name", { toString: () => tag }, TypeError, notString("Object")],
    ["symbol", Symbol(tag), TypeError, notString("a symbol")],
  ];
  const before = ourShmEntries();
  for (const [label, name, type, message] of cases) {
    const bad = name as string;
    assertThrows(() => Memalloc.open(bad, { maxMemory: 64 * KiB }), type, message, `open ${label}`);
    assertThrows(() => Memalloc.unlink(bad), type, message, `unlink ${label}`);
    assertThrows(() => Memalloc.exists(bad), type, message, `exists ${label}`);
  }
  // Left out, open() takes the default store; unlink and exists need a name.
  for (const call of [() => Memalloc.unlink(undefined!), () => Memalloc.exists(undefined!)]) {
    assertThrows(call, TypeError, notString("undefined"), "undefined");
  }
  assert.deepEqual(ourShmEntries(), before);
  // The limit is exact: 246 bytes is a store name.
  const longest = `${tag}-`.padEnd(246, "n");
  try {
    Memalloc.open(longest, { maxMemory: 64 * KiB }).close();
    assert.equal(Memalloc.exists(longest), true);
    assert.equal(Memalloc.unlink(longest), true);
  } finally {
    Memalloc.unlink(longest);
  }
});

// ---------------------------------------------------------------------------------------------
// Values

test("Memalloc.write: a function, symbol, top-level undefined or a Map or Set cycle is a TypeError naming it and its path, and changes nothing", async () => {
  const hint = "memalloc stores strings, bytes and values cbor-x can encode";
  const cycleHint = "a cycle can only return to a plain object or an array";
  const map = new Map<string, unknown>();
  map.set("self", map);
  const set = new Set<unknown>();
  set.add({ set });
  const dictionary = Object.create(null) as Record<string, unknown>;
  dictionary.self = [dictionary];
  const cases: Case[] = [
    ["function", () => 1, TypeError, `Cannot store a function: ${hint}`],
    ["class", class {}, TypeError, `Cannot store a function: ${hint}`],
    ["symbol", Symbol("s"), TypeError, `Cannot store a symbol: ${hint}`],
    [
      "undefined",
      undefined,
      TypeError,
      "Cannot store undefined: reading a name that is not stored returns undefined",
    ],
    [
      "function deep in objects and arrays",
      { a: [{ b: () => 1 }] },
      TypeError,
      'Cannot store the value at "a[0].b": it is a function',
    ],
    [
      "symbol deep in a Map",
      { a: new Map([["k", { s: Symbol() }]]) },
      TypeError,
      'Cannot store the value at "a.get("k").s": it is a symbol',
    ],
    [
      "symbol in a Set",
      new Set([1, Symbol()]),
      TypeError,
      'Cannot store the value at "values()[1]": it is a symbol',
    ],
    [
      "symbol as a Map key",
      new Map([[Symbol(), 1]]),
      TypeError,
      'Cannot store the value at "keys()[0]": it is a symbol',
    ],
    [
      "Map that contains itself",
      map,
      TypeError,
      `Cannot store the value at "get("self")": it is a Map that contains itself; ${cycleHint}`,
    ],
    [
      "Set that contains itself",
      { x: set },
      TypeError,
      `Cannot store the value at "x.values()[0].set": it is a Set that contains itself; ${cycleHint}`,
    ],
    [
      "object without a prototype that contains itself",
      dictionary,
      TypeError,
      `Cannot store the value at "self[0]": it is an object without a prototype that contains ` +
      `itself; ${cycleHint}`,
    ],
  ];
  await withStore({}, (store) => {
    assertUnchanged(store, () => {
      for (const [label, value, type, message] of cases) {
        assertThrows(() => store.write("new", value), type, message, `new name, ${label}`);
        assertThrows(() => store.write("keep", value), type, message, `overwrite, ${label}`);
      }
      // An error thrown while the value is read is the caller's own, and nothing is written.
      const boom = new Error("boom");
      const throwing = Object.defineProperty({}, "a", {
        enumerable: true,
        get: () => {
          throw boom;
        },
      });
      assert.throws(() => store.write("keep", throwing), (error) => error === boom);
    });
    assert.equal(store.read("new"), undefined);
  });
});

test("Memalloc.write keeps cycles through plain objects and arrays: the value read back has the same cycles", async () => {
  const self: Record<string, unknown> = { name: "self" };
  self.self = self;
  const list: unknown[] = [1];
  list.push(list);
  const parent: Record<string, unknown> = { children: [] };
  const child = { parent, shared: { n: 1 } };
  (parent.children as unknown[]).push(child, child.shared);
  const viaMap: Record<string, unknown> = { map: new Map<string, unknown>() };
  (viaMap.map as Map<string, unknown>).set("back", viaMap);
  const values: Record<string, unknown> = { self, list, parent, viaMap };
  await withStore({}, (store) => {
    const before = figures(store);
    for (const [name, value] of Object.entries(values)) store.write(name, value);
    const after = figures(store);
    assert.equal(after.entries, before.entries + 4);
    assert.equal(after.writes, before.writes + 4);
    for (const [name, value] of Object.entries(values)) {
      assert.equal(store.info(name)?.kind, "cbor", name);
      assert.deepStrictEqual(store.read(name), value, name);
    }
    const s = store.read<Record<string, unknown>>("self")!;
    assert.equal(s.self, s);
    const l = store.read<unknown[]>("list")!;
    assert.equal(l[1], l);
    const p = store.read<{ children: [{ parent: unknown; shared: unknown }, unknown] }>("parent")!;
    assert.equal(p.children[0].parent, p);
    assert.equal(p.children[1], p.children[0].shared, "an object seen twice in a cycle is one");
    const m = store.read<{ map: Map<string, unknown> }>("viaMap")!;
    assert.equal(m.map.get("back"), m);
    assert.deepEqual(store.verify(), []);
  });
});

test("Memalloc.write: a value larger than the store is a RangeError naming the entry and its size; a full store keeps every entry", async () => {
  await withStore({ maxMemory: 256 * KiB, autoclean: 0.8 }, (store) => {
    const filler = (i: number) => `${i}:`.padEnd(1000, "v");
    let count = 0;
    while (store.stats().largestFree > 2000) store.write(`k${count}`, filler(count++));
    assert.equal(store.stats().evictions, 0, "filled without evicting");
    assert.ok(count > 200, `only ${count} entries fit`);
    const tooBig = (name: string, bytes: number) =>
      new RegExp(
        `^Cannot write "${name}": ${bytes} bytes do not fit in the store even when empty ` +
          `\\(at most \\d+ bytes with this name\\)$`,
      );
    const cases: Array<[string, unknown, RegExp]> = [
      ["huge", new Uint8Array(300 * KiB), tooBig("huge", 300 * KiB)],
      ["ascii", "x".repeat(300 * KiB), tooBig("ascii", 300 * KiB)],
      // 100 Ki UTF-16 units, less than the store's size; 300 KiB of UTF-8.
      ["euro", "€".repeat(100 * KiB), tooBig("euro", 300 * KiB)],
      ["k0", new Uint8Array(256 * KiB), tooBig("k0", 256 * KiB)], // an overwrite: k0 stays
      [
        "cbor",
        Array.from({ length: 300 }, (_, i) => filler(i)),
        /(do|does) not fit in the store even when empty/,
      ],
    ];
    assertUnchanged(store, () => {
      for (const [name, value, message] of cases) {
        assert.throws(() => store.write(name, value), (error: unknown) => {
          assert.ok(error instanceof RangeError, `${name}: ${error}`);
          assert.match(error.message, message, name);
          return true;
        });
      }
    });
    for (let i = 0; i < count; i++) assert.equal(store.read(`k${i}`), filler(i), `k${i} kept`);
    for (const [name] of cases.filter(([name]) => name !== "k0")) {
      assert.equal(store.read(name), undefined, `${name} was not written`);
    }
  });
});

test("Memalloc.write: a value whose shared objects would expand past the store is a RangeError, without hanging", async () => {
  // { a: v, b: v } nested 48 deep is 2^48 objects once written out: the walk over the value
  // must give up as soon as it has seen more than the store holds, not visit every copy.
  const limitMs = 60_000; // a hang guard only: the refusal takes milliseconds
  const results = await Promise.allSettled(RUNTIMES.map(async (runtime) => {
    const name = uniqueName("hostile-dag");
    try {
      const child = start(runtime, "_hostile_child.ts", ["dag", name, "48"]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<"hung">((resolve) => {
        timer = setTimeout(() => resolve("hung"), limitMs);
      });
      const result = await Promise.race([child.exited, hung]);
      clearTimeout(timer);
      if (result === "hung") {
        child.kill("SIGKILL");
        await child.exited;
        assert.fail(`${runtime}: write of a 48-deep shared object still running after 60 s`);
      }
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const out = lastJson(result.stdout);
      assert.equal(out.error, "RangeError", `${runtime}: ${JSON.stringify(out)}`);
      assert.match(out.message, /(do|does) not fit in the store even when empty/, runtime);
      assert.deepEqual([out.entries, out.writes, out.evictions, out.keep], [1, 1, 0, "kept"]);
    } finally {
      Memalloc.unlink(name);
    }
  }));
  for (const result of results) if (result.status === "rejected") throw result.reason;
});

// ---------------------------------------------------------------------------------------------
// Options

/** Opens a new name and an existing store with each bad option: all refused, nothing made. */
function assertOpenRefuses(cases: Case[]): void {
  const fresh = uniqueName("hostile-options");
  const existing = uniqueName("hostile-options");
  using store = Memalloc.open(existing, { maxMemory: 64 * KiB }); // the smallest size there is
  try {
    assert.equal(store.maxMemory, 64 * KiB);
    const bytes = segmentBytes(existing);
    const before = ourShmEntries();
    for (const [label, options, type, message] of cases) {
      for (const name of [fresh, existing]) {
        const call = () => Memalloc.open(name, options as never);
        assertThrows(call, type, message, `${label} (${name === fresh ? "new" : "existing"})`);
      }
    }
    assert.deepEqual(ourShmEntries(), before, "an open that failed left a segment");
    assert.equal(Memalloc.exists(fresh), false);
    assert.ok(segmentBytes(existing).equals(bytes), "the existing store changed");
  } finally {
    Memalloc.unlink(existing);
    Memalloc.unlink(fresh); // only if an open wrongly succeeded
  }
}

test("Memalloc.open: maxMemory not an integer is a TypeError, out of 64 KiB to 4 GiB a RangeError; nothing is created", () => {
  const notInteger = (what: string) => `maxMemory must be an integer number of bytes, got ${what}`;
  const outOfRange = (size: number) =>
    `maxMemory ${size} is out of range: it must be from 65536 to 4294967296 bytes`;
  const range = (
    size: number,
  ): Case => [String(size), { maxMemory: size }, RangeError, outOfRange(size)];
  assertOpenRefuses([
    ["NaN", { maxMemory: Number.NaN }, TypeError, notInteger("NaN")],
    ["Infinity", { maxMemory: Infinity }, TypeError, notInteger("Infinity")],
    ["-Infinity", { maxMemory: -Infinity }, TypeError, notInteger("-Infinity")],
    ["fractional", { maxMemory: MiB + 0.5 }, TypeError, notInteger(String(MiB + 0.5))],
    ["a string", { maxMemory: "1048576" }, TypeError, notInteger('"1048576"')],
    ["null", { maxMemory: null }, TypeError, notInteger("null")],
    ["a bigint", { maxMemory: 1n << 20n }, TypeError, notInteger("1048576n")],
    range(-1),
    range(0),
    range(64 * KiB - 1),
    range(2 ** 32 + 1),
    range(2 ** 53),
  ]);
});

test("Memalloc.open: autoclean not a number is a TypeError, outside (0, 1] a RangeError; nothing is created, and 1 is allowed", () => {
  const notNumber = (what: string) => `autoclean must be a number in (0, 1], got ${what}`;
  const range = (
    value: number,
  ): Case => [
    String(value),
    { autoclean: value },
    RangeError,
    `autoclean must be in (0, 1], got ${value}`,
  ];
  assertOpenRefuses([
    range(0),
    range(-0.5),
    range(1.5),
    range(1 + Number.EPSILON),
    range(Infinity),
    range(-Infinity),
    ["NaN", { autoclean: Number.NaN }, TypeError, notNumber("NaN")],
    ["a string", { autoclean: "0.5" }, TypeError, notNumber('"0.5"')],
    ["null", { autoclean: null }, TypeError, notNumber("null")],
  ]);
  const name = uniqueName("hostile-autoclean");
  try {
    using store = Memalloc.open(name, { maxMemory: 64 * KiB, autoclean: 1 });
    assert.equal(store.autoclean, 1);
    assert.equal(store.stats().watermark, 64 * KiB);
  } finally {
    Memalloc.unlink(name);
  }
});

test("Memalloc.open: unknown option keys, options that are not an object and a mode that is not permission bits are refused; nothing is created", () => {
  const unknown = (key: string) =>
    `Unknown store option "${key}": the options are maxMemory, autoclean, mode, trust, lock, lockTimeout, create, ttl, decodeCache and objects`;
  const notObject = (what: string) => `Store options must be an object, got ${what}`;
  const badMode = (what: string) =>
    `Segment mode must be permission bits from 0o000 to 0o777, got ${what}`;
  assertOpenRefuses([
    ["misspelt key", { maxmemory: MiB }, TypeError, unknown("maxmemory")],
    ["extra key", { maxMemory: MiB, size: MiB }, TypeError, unknown("size")],
    ["own __proto__ key", JSON.parse('{"__proto__": {}}'), TypeError, unknown("__proto__")],
    ["a string", "big", TypeError, notObject('"big"')],
    ["a number", 5, TypeError, notObject("5")],
    ["null", null, TypeError, notObject("null")],
    ["true", true, TypeError, notObject("true")],
    ["an array", [MiB], TypeError, notObject("Array")],
    ["a function", () => ({ maxMemory: MiB }), TypeError, notObject("a function")],
    ["a symbol", Symbol("options"), TypeError, notObject("a symbol")],
    ["mode -1", { mode: -1 }, RangeError, badMode("-1")],
    ["mode 0o1000", { mode: 0o1000 }, RangeError, badMode("0o1000")],
    ["mode 0o7777", { mode: 0o7777 }, RangeError, badMode("0o7777")],
    // Documented: "@throws {TypeError} For a bad name or option type".
    ["mode a string", { mode: "0600" }, TypeError, badMode('"0600"')],
    ["mode null", { mode: null }, TypeError, badMode("null")],
  ]);
});

// ---------------------------------------------------------------------------------------------
// System limits

test("Memalloc.open and Memalloc.unlink of a store owned by another user fail with EACCES naming the store, and leave it as it was", async () => {
  const other = await prepareOtherUser(["_hostile_child.ts"]);
  if (other === undefined) {
    console.log("skipped: needs root");
    return;
  }
  try {
    for (const mode of [0o600, 0o644]) { // 0o644: others may read, but a store is opened read-write
      const name = uniqueName("hostile-eacces");
      try {
        using store = Memalloc.open(name, { maxMemory: 64 * KiB, mode }); // owned by root
        store.write("keep", "kept");
        const bytes = segmentBytes(name);
        for (const runtime of RUNTIMES) {
          const commands: Array<[string, string]> = [["open", "shm_open"], [
            "unlink",
            "shm_unlink",
          ]];
          for (const [command, syscall] of commands) {
            const result: ChildResult = await other.run(nobody, runtime, "_hostile_child.ts", [
              command,
              name,
            ]);
            const out = lastJson(result.stdout);
            const at = `${runtime} ${command} mode 0o${mode.toString(8)}: ${result.stdout}`;
            assert.deepEqual(
              [out.error, out.code, out.errno, out.syscall, out.store, out.message],
              [
                "MemallocError",
                "EACCES",
                13,
                syscall,
                name,
                `Cannot ${command} store "${name}": permission denied (EACCES)`,
              ],
              at,
            );
            assert.equal(out.exists, true, `${at}: exists() is true even without permission`);
          }
        }
        assert.ok(segmentBytes(name).equals(bytes), "the store changed");
        const stat = statSync(`/dev/shm/memalloc.${name}`);
        assert.deepEqual([stat.uid, stat.mode & 0o777], [0, mode]);
        assert.equal(store.read("child"), undefined);
        assert.equal(store.stats().entries, 1);
      } finally {
        Memalloc.unlink(name);
      }
    }
  } finally {
    other.remove();
  }
});

test("Memalloc.open fails with ENOSPC on a full /dev/shm (no inode, no space, or a size past the free space) and leaves no segment", async () => {
  if (!isRoot()) {
    console.log("skipped: needs root");
    return;
  }
  // Each case runs in a private mount namespace over a 1 MiB tmpfs of its own.
  const cases = [
    { label: "no inode left", mount: "size=1m,nr_inodes=1", command: ["open", "65536"] },
    { label: "size past the free space", mount: "size=1m", command: ["open", String(8 * MiB)] },
    { label: "no space left", mount: "size=1m", command: ["fill-then-open"] },
  ];
  for (const { label, mount, command } of cases) {
    for (const runtime of RUNTIMES) {
      const name = uniqueName("hostile-enospc");
      const [verb, ...rest] = command;
      const result = await run(runtime, "_hostile_child.ts", [verb!, name, ...rest], {
        wrapper: [
          "unshare",
          "-m",
          "sh",
          "-c",
          `mount -t tmpfs -o ${mount} tmpfs /dev/shm && exec "$@"`,
          "sh",
        ],
      });
      const out = lastJson(result.stdout);
      const at = `${runtime}, ${label}: ${result.stdout}${result.stderr}`;
      const [syscall, action] = label === "no inode left"
        ? ["shm_open", "create"]
        : ["posix_fallocate", "reserve memory for"];
      assert.deepEqual(
        [out.error, out.code, out.errno, out.syscall, out.store, out.message],
        [
          "MemallocError",
          "ENOSPC",
          28,
          syscall,
          name,
          `Cannot ${action} store "${name}": no space left on device (ENOSPC)`,
        ],
        at,
      );
      assert.equal(out.exists, false, at);
      if (verb === "fill-then-open") {
        // The store made before /dev/shm filled up reserved its pages: it still takes writes.
        assert.deepEqual(out.shm, ["filler", `memalloc.${name}-kept`], at);
        assert.deepEqual([out.kept, out.after, out.verify], ["kept", 1000, []], at);
      } else {
        assert.deepEqual(out.shm, [], at);
      }
      assert.equal(Memalloc.exists(name), false, "the private tmpfs leaked into /dev/shm");
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Closed stores

test("Memalloc.close twice is safe, and every method after close throws MemallocError ERR_MEMALLOC_CLOSED naming the store", async () => {
  await withStore({}, (store) => {
    const name = store.name;
    const closed = Memalloc.open(name);
    closed.write("closed", "written before close");
    closed.close();
    closed.close();
    closed[Symbol.dispose]();
    assert.deepEqual([closed.name, closed.maxMemory], [name, 256 * KiB]);
    const calls: Array<[string, () => unknown]> = [
      ["write", () => closed.write("keep", "overwritten")],
      ["read", () => closed.read("keep")],
      ["delete", () => closed.delete("keep")],
      ["info", () => closed.info("keep")],
      ["clean", () => closed.clean()],
      ["purge", () => closed.purge()],
      ["stats", () => closed.stats()],
      ["verify", () => closed.verify()],
    ];
    assertUnchanged(store, () => {
      for (const [method, call] of calls) {
        assert.throws(call, (error: unknown) => {
          assert.ok(error instanceof MemallocError, `${method}: ${error}`);
          assert.deepEqual(
            [error.name, error.code, error.errno, error.syscall, error.store, error.message],
            [
              "MemallocError",
              "ERR_MEMALLOC_CLOSED",
              0,
              undefined,
              name,
              `Store "${name}" is closed`,
            ],
            method,
          );
          return true;
        });
      }
    });
    assert.equal(store.read("closed"), "written before close", "close removes nothing");
    assert.equal(Memalloc.exists(name), true);
  });
});
