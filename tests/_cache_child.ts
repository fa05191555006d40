// A child process for cache_test.ts: `<command> <store> [args...]`; prints JSON lines.
import { Memalloc } from "../mod.ts";
import { say } from "./_child.ts";

const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const [command, storeName, ...args] = argv as [string, string, ...string[]];
const MiB = 1 << 20;

/** Waits until the start time the parent gave (ms since the epoch), so children race. */
function waitUntil(at: number): void {
  while (Date.now() < at) { /* spin: a sleep would let the first child finish first */ }
}

switch (command) {
  case "increment": {
    // <names> <count> <start-at> <every> [record]: `count` increments spread over `names`
    // names, a line after every `every` that returned. With `record`, the number that returned
    // is written under that name after each one, for a parent that kills this process (lines
    // still in an output buffer die with it; the store keeps what was written).
    const [names, count, at, every] = args.slice(0, 4).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const record = args[4];
    using store = Memalloc.open(storeName, { maxMemory: 4 * MiB });
    say({ ready: true });
    waitUntil(at);
    let done = 0;
    for (let i = 0; i < count; i++) {
      store.increment(`counter-${i % names}`);
      done++;
      if (record !== undefined) store.write(record, done);
      if (done % every === 0) say({ done });
    }
    say({ done, finished: true });
    break;
  }
  case "add": {
    const [at] = args.map(Number) as [number];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    waitUntil(at);
    say({ added: store.add("the-one", `${process.pid}`) });
    break;
  }
  case "cas": {
    // Every child reads the version its parent wrote, then writes over it at once.
    const [version, at] = args.map(Number) as [number, number];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    waitUntil(at);
    say({ won: store.write("cas", `${process.pid}`, { ifVersion: version }) });
    break;
  }
  case "update": {
    // <count>: `count` read-modify-write appends of this pid to one list.
    const [count] = args.map(Number) as [number];
    using store = Memalloc.open(storeName, { maxMemory: 4 * MiB });
    for (let i = 0; i < count; i++) {
      store.update<number[]>("list", (list = []) => [...list, process.pid]);
    }
    say({ done: count });
    break;
  }
  case "change": {
    // <name>: after 300 ms writes it, after 300 more deletes it, saying when each was done.
    const [name] = args as [string];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await sleep(300);
    store.write(name, `from ${process.pid}`);
    say({ wrote: Date.now() });
    await sleep(300);
    store.delete(name);
    say({ deleted: Date.now() });
    break;
  }
  case "write-json": {
    // <name> <json> [records|json]: writes the parsed value under the name, objects as told.
    const [name, json, objects = "records"] = args as [string, string, "records" | "json"];
    using store = Memalloc.open(storeName, { maxMemory: MiB, objects });
    store.write(name, JSON.parse(json));
    say({ wrote: Date.now(), kind: store.info(name)!.kind });
    break;
  }
  case "write-shapes": {
    // <prefix> <count> <at>: from time <at>, writes <count> objects of a shape each, new to the
    // table (their keys start with <prefix>), under the names <prefix>0, <prefix>1 ...
    const [prefix, count, at] = [args[0]!, Number(args[1]), Number(args[2])];
    using store = Memalloc.open(storeName, { maxMemory: 4 * MiB });
    waitUntil(at);
    for (let i = 0; i < count; i++) {
      store.write(`${prefix}${i}`, { [`${prefix}${i}`]: i, common: [{ i, prefix }] });
    }
    say({ wrote: count });
    break;
  }
  case "shapes-forever": {
    // <prefix>: says it is ready, then writes objects of a new shape each until killed (names
    // and values as write-shapes makes them).
    const prefix = args[0]!;
    using store = Memalloc.open(storeName, { maxMemory: 4 * MiB });
    say({ ready: true });
    for (let i = 0; i < 1_000_000; i++) {
      store.write(`${prefix}${i}`, { [`${prefix}${i}`]: i, common: [{ i, prefix }] });
    }
    break;
  }
  case "read-all": {
    // <names...>: reads each name (plain, then frozen) and says the values and their kinds.
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    say({
      values: args.map((name) => store.read(name)),
      frozen: args.map((name) => store.read(name, { frozen: true })),
      kinds: args.map((name) => store.info(name)?.kind),
    });
    break;
  }
  case "delete-name": {
    // <name>: deletes it; says whether there was one.
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    say({ deleted: store.delete(args[0]!) });
    break;
  }
  case "purge": {
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    say({ purged: store.purge() });
    break;
  }
  case "overwrite-pairs": {
    // <name> <count>: writes { a: i, b: [i, i], pad } count times, one overwrite after another.
    const [name, count] = args as [string, string];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    const pad = "p".repeat(200);
    say({ ready: true });
    for (let i = 1; i <= Number(count); i++) store.write(name, { a: i, b: [i, i], pad });
    say({ done: Number(count) });
    break;
  }
  case "write-ttl": {
    // <name> <ttl>: writes the name with that time to live; says when it expires.
    const [name, ttl] = args as [string, string];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    store.write(name, `from ${process.pid}`, { ttl: Number(ttl) });
    say({ expires: store.info(name)!.expires });
    break;
  }
  case "await-expiry": {
    // <name> <prefix>: waits for the name to appear, then reads it until it is gone; says when
    // the last read that found it began, when the first that did not ended, and whether has,
    // keys, entries and list agreed.
    const [name, prefix] = args as [string, string];
    using store = Memalloc.open(storeName, { maxMemory: MiB });
    const pause = () => new Promise((resolve) => setTimeout(resolve, 1));
    say({ ready: true });
    while (store.read(name) === undefined) await pause();
    let aliveStart = 0;
    for (;; await pause()) {
      const start = Date.now();
      if (store.read(name) === undefined) {
        say({
          aliveStart,
          goneEnd: Date.now(),
          has: store.has(name),
          keys: store.keys({ prefix }).includes(name),
          entries: [...store.entries({ prefix })].some(([key]) => key === name),
          list: [...store.list({ prefix })].some((entry) => entry.name === name),
        });
        break;
      }
      aliveStart = start;
    }
    break;
  }
  case "ttl-churn": {
    // <seed>: writes, overwrites, increments and deletes 500 names with ttls of 0 to 200 ms, in
    // a small store that evicts, until killed; a line every 500 operations.
    let seed = Number(args[0]) >>> 0;
    const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    using store = Memalloc.open(storeName, { maxMemory: 256 * 1024 });
    const value = "v".repeat(300);
    for (let i = 1;; i++) {
      const name = `n${Math.floor(random() * 500)}`;
      const ttl = random() < 0.2 ? 0 : Math.floor(random() * 200);
      const roll = random();
      if (roll < 0.6) store.write(name, value.slice(0, Math.floor(random() * 300)), { ttl });
      else if (roll < 0.8) store.delete(name);
      else store.increment(`c${name}`, 1, { ttl });
      if (i % 500 === 0) say({ done: i });
    }
  }
  default:
    throw new Error(`Unknown command ${command}`);
}
