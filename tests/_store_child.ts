// A child process for memalloc_test.ts: `<command> <store> [args...]`; prints JSON lines.
import assert from "node:assert/strict";
import { Memalloc } from "../mod.ts";
import { sampleValues } from "./_values.ts";
import { say } from "./_child.ts";

const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const [command, storeName, ...args] = argv;

/** A value that carries its own check: `writer:seq:length:checksum:payload`. */
function makeValue(writer: string, seq: number, length: number): string {
  const payload = String.fromCharCode(97 + (seq % 26)).repeat(length);
  return `${writer}:${seq}:${length}:${checksum(payload)}:${payload}`;
}
/** Two strings of 30,000 UTF-8 bytes each: one ASCII, one of 3-byte characters. */
const FLIP_ASCII = "a".repeat(30_000), FLIP_EURO = "€".repeat(10_000);

function checkValue(value: string): boolean {
  const parts = value.split(":");
  if (parts.length !== 5) return false;
  const payload = parts[4]!;
  return payload.length === Number(parts[2]) && checksum(payload) === Number(parts[3]);
}
function checksum(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

switch (command) {
  case "write-samples": {
    using store = Memalloc.open(storeName!, { maxMemory: 4 << 20 });
    for (const [name, value] of Object.entries(sampleValues())) store.write(name, value);
    say({ wrote: Object.keys(sampleValues()).length });
    break;
  }
  case "read-samples": {
    using store = Memalloc.open(storeName!, { maxMemory: 4 << 20 });
    const failures: string[] = [];
    for (const [name, expected] of Object.entries(sampleValues())) {
      try {
        assert.deepStrictEqual(store.read(name), expected);
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message.slice(0, 300)}`);
      }
    }
    say({ checked: Object.keys(sampleValues()).length, failures });
    break;
  }
  case "stress": { // stress <store> <writer-id> <ms>: write and read shared names, check every read
    const [writer, ms] = [args[0]!, Number(args[1])];
    using store = Memalloc.open(storeName!, { maxMemory: 256 << 10 });
    let seed = [...writer].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let writes = 0, reads = 0, hits = 0, torn = 0, deletes = 0;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      for (let i = 0; i < 100; i++) {
        const name = `shared-${Math.floor(random() * 64)}`;
        const r = random();
        if (r < 0.4) {
          store.write(name, makeValue(writer, writes++, Math.floor(random() ** 2 * 8000)));
        } else if (r < 0.45) {
          store.delete(name);
          deletes++;
        } else {
          const value = store.read<string>(name);
          reads++;
          if (value !== undefined) {
            hits++;
            if (!checkValue(value)) torn++;
          }
        }
      }
    }
    say({ writer, writes, reads, hits, torn, deletes });
    break;
  }
  case "flip-write": { // flip-write <store> <ms>: rewrite "k" as ASCII, then as multi-byte text
    using store = Memalloc.open(storeName!, { maxMemory: 256 << 10 });
    const deadline = Date.now() + Number(args[0]);
    let writes = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 100; i++) store.write("k", writes++ & 1 ? FLIP_EURO : FLIP_ASCII);
    }
    say({ writes });
    break;
  }
  case "flip-read": { // flip-read <store> <ms>: read "k"; it must be one of the two strings
    using store = Memalloc.open(storeName!, { maxMemory: 256 << 10 });
    const deadline = Date.now() + Number(args[0]);
    let reads = 0, hits = 0, bad = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 100; i++, reads++) {
        const value = store.read<string>("k");
        if (value === undefined) continue;
        hits++;
        if (value !== FLIP_ASCII && value !== FLIP_EURO) bad++;
      }
    }
    say({ reads, hits, bad });
    break;
  }
  case "write-loop": { // write-loop <store>: overwrite names forever, until killed
    using store = Memalloc.open(storeName!, { maxMemory: 256 << 10 });
    say({ ready: true });
    for (let seq = 0;; seq++) {
      store.write(`k${seq % 40}`, makeValue("loop", seq, (seq * 7919) % 9000));
      if (seq % 13 === 0) store.delete(`k${(seq * 3) % 40}`);
    }
  }
  // falls through: write-loop never ends
  case "check": { // check <store>: verify and check every value
    using store = Memalloc.open(storeName!, { maxMemory: 256 << 10 });
    let bad = 0, found = 0;
    for (let i = 0; i < 64; i++) {
      for (const name of [`k${i}`, `shared-${i}`]) {
        const value = store.read<string>(name);
        if (value === undefined) continue;
        found++;
        if (!checkValue(value)) bad++;
      }
    }
    say({ problems: store.verify(), found, bad, stats: store.stats() });
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
