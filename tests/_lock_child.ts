// A child process for lock_test.ts: `<command> <store> [args...]`; prints JSON lines.
import { Segment } from "../ffi/segment.ts";
import { say } from "./_child.ts";

const [command, name, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv
  .slice(2);
const MiB = 1 << 20;
/** The word the counting children increment, past the headers (lock_test.ts reads it). */
const COUNTER_OFFSET = 4096;

switch (command) {
  case "hold": { // hold <store>: take the lock and keep it until killed
    const segment = Segment.open(name!, { size: MiB });
    segment.lock();
    say({ locked: true, holder: segment.lockHolder, pid: process.pid });
    setInterval(() => {}, 1000);
    break;
  }
  case "count": { // count <store> <iterations> <mutex|flock>: increment a word under the lock
    const segment = Segment.open(name!, { size: MiB, lock: args[1] as "mutex" | "flock" });
    const words = new Uint32Array(segment.buffer);
    const at = COUNTER_OFFSET >>> 2;
    const iterations = Number(args[0]);
    for (let i = 0; i < iterations; i++) {
      segment.lock();
      // A plain read, a pause, a plain write: without mutual exclusion, increments are lost.
      const value = words[at]!;
      if ((i & 63) === 0) { for (let spin = 0; spin < 1000; spin++) words[at + 1] = spin; }
      words[at] = value + 1;
      segment.unlock();
    }
    say({ done: iterations, kind: segment.lockKind });
    segment.close();
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
