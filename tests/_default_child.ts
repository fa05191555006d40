// A child process for default_store_test.ts: `<command> [args...]`; prints one JSON line.
// Module state (the default store) is per process, so each scenario runs in a fresh one.
import * as memalloc from "../mod.ts";
import { Memalloc } from "../mod.ts";
import { sampleValues } from "./_values.ts";
import { attempt, say } from "./_child.ts";

const [command, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);

switch (command) {
  case "name": // name: what defaultStoreName() gives (from MEMALLOC_STORE, or "default")
    say(attempt(() => memalloc.defaultStoreName()));
    break;
  case "choose": { // choose <store> <other>: setDefaultStore, then the module functions
    const [name, other] = args as [string, string];
    const before = memalloc.defaultStoreName();
    memalloc.setDefaultStore(name, { maxMemory: 1 << 20, autoclean: 0.5 });
    const rechosen = attempt(() => memalloc.setDefaultStore(other)); // before first use: allowed
    memalloc.setDefaultStore(name, { maxMemory: 1 << 20, autoclean: 0.5 });
    memalloc.write("k", "v");
    const store = memalloc.defaultMemalloc();
    say({
      before,
      rechosen,
      after: memalloc.defaultStoreName(),
      store: [store.name, store.maxMemory, store.autoclean],
      read: memalloc.read("k"),
      again: attempt(() => memalloc.setDefaultStore(name)), // the open one: a no-op
      other: attempt(() => memalloc.setDefaultStore(other)),
      otherOptions: attempt(() => memalloc.setDefaultStore(name, { maxMemory: 2 << 20 })),
      badName: attempt(() => memalloc.setDefaultStore("a/b")),
      badOption: attempt(() => memalloc.setDefaultStore(name, { maxMemory: 1 })),
      stillRead: memalloc.read("k"),
      otherExists: Memalloc.exists(other),
    });
    break;
  }
  case "whole-api": { // whole-api <store>: every call of the API, for the permission test
    const [name] = args as [string];
    const envName = attempt(() => memalloc.defaultStoreName()); // MEMALLOC_STORE, if readable
    const done: string[] = [];
    {
      using store = Memalloc.open(name, { maxMemory: 4 << 20 });
      for (const [key, value] of Object.entries(sampleValues())) store.write(key, value);
      for (const key of Object.keys(sampleValues())) store.read(key);
      store.info("string");
      store.delete("string");
      store.clean();
      store.stats();
      if (store.verify().length !== 0) throw new Error("verify() found problems");
      store.purge();
      done.push("Memalloc");
    }
    memalloc.setDefaultStore(`${name}-default`, { maxMemory: 1 << 20 });
    memalloc.write("var1", "Foobar");
    memalloc.write("var1", memalloc.read("var1") + "123");
    done.push(String(memalloc.read("var1")));
    memalloc.remove("var1");
    memalloc.clean();
    memalloc.stats();
    memalloc.purge();
    Memalloc.unlink(`${name}-default`);
    done.push(String(Memalloc.exists(name)), String(Memalloc.unlink(name)));
    say({ done, envName });
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
