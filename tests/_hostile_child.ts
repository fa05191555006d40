// A child process for hostile_test.ts: `<command> <store> [args...]`; prints one JSON line.
import { readdirSync, writeFileSync } from "node:fs";
import { Memalloc } from "../mod.ts";
import { attempt, say } from "./_child.ts";

const [command, name, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv
  .slice(2);

switch (command) {
  case "open": { // open <store> <maxMemory>: try to open and write one entry
    const maxMemory = Number(args[0] ?? 1 << 20);
    say({
      ...attempt(() => {
        using store = Memalloc.open(name!, { maxMemory });
        store.write("child", "was here");
        return store.maxMemory;
      }),
      exists: Memalloc.exists(name!),
      shm: readdirSync("/dev/shm").sort(),
    });
    break;
  }
  case "unlink": { // unlink <store>
    say({ ...attempt(() => Memalloc.unlink(name!)), exists: Memalloc.exists(name!) });
    break;
  }
  case "fill-then-open": { // in a private tmpfs: keep a store, fill /dev/shm, open another
    using kept = Memalloc.open(`${name}-kept`, { maxMemory: 64 << 10 });
    kept.write("keep", "kept");
    try {
      writeFileSync("/dev/shm/filler", new Uint8Array(64 << 20)); // more than the tmpfs holds
    } catch (error) {
      if ((error as { code?: string }).code !== "ENOSPC") throw error;
    }
    const failed = attempt(() => Memalloc.open(name!, { maxMemory: 64 << 10 }).close());
    // The kept store reserved its pages when it was created: it still takes writes.
    kept.write("after", "x".repeat(1000));
    say({
      ...failed,
      exists: Memalloc.exists(name!),
      shm: readdirSync("/dev/shm").sort(),
      kept: kept.read("keep"),
      after: kept.read<string>("after")?.length,
      verify: kept.verify(),
    });
    break;
  }
  case "dag": { // dag <store> <depth>: write an object whose halves are the same object, nested
    using store = Memalloc.open(name!, { maxMemory: 256 << 10 });
    store.write("keep", "kept");
    let value: unknown = { leaf: "x".repeat(100) };
    for (let i = 0; i < Number(args[0]); i++) value = { a: value, b: value };
    const failed = attempt(() => store.write("dag", value));
    const { entries, writes, evictions } = store.stats();
    say({ ...failed, entries, writes, evictions, keep: store.read("keep") });
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
