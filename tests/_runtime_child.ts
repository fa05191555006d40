// A child process for node_test.ts: `<store>`; opens the store and writes to it, printing one
// JSON line with the outcome (the error's class, code and message when it failed).
import * as memalloc from "../mod.ts";
import { attempt, say } from "./_child.ts";

const name = (globalThis as { process?: { argv: string[] } }).process!.argv[2]!;
say(attempt(() => {
  memalloc.setDefaultStore(name, { maxMemory: 64 << 10 });
  memalloc.write("a", 1);
  return memalloc.read("a");
}));
