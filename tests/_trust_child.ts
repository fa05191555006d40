// A child process for trust_test.ts: `<command> <store> [args...]`; prints one JSON line.
import * as memalloc from "../mod.ts";
import { Memalloc, type MemallocOptions } from "../mod.ts";
import { attempt, say } from "./_child.ts";

const [command, name, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv
  .slice(2);

switch (command) {
  case "plant": { // plant <store> <options json>: create a store and write a forged config
    const options = JSON.parse(args[0]!) as MemallocOptions;
    using store = Memalloc.open(name!, { maxMemory: 64 << 10, ...options });
    store.write("config", { isAdmin: true, redirect: "http://evil.example" });
    say({ result: "planted" });
    break;
  }
  case "open": { // open <store> <options json>: open, read the config, write an entry
    const options = JSON.parse(args[0]!) as MemallocOptions;
    say(attempt(() => {
      using store = Memalloc.open(name!, { maxMemory: 64 << 10, ...options });
      const config = store.read("config") ?? null;
      store.write("written-by", process.getuid?.() ?? -1);
      return { config };
    }));
    break;
  }
  case "default-read": // default-read <store>: the module functions on MEMALLOC_STORE's store
    say(attempt(() => ({ config: memalloc.read("config") ?? null })));
    break;
  default:
    throw new Error(`unknown command ${command}`);
}
