// A child process for segment_test.ts: `<command> <name> [args...]`; prints one JSON line per step.
import { Segment } from "../ffi/segment.ts";
import { say } from "./_child.ts";

const [command, name, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv
  .slice(2);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

try {
  switch (command) {
    case "open": {
      using segment = Segment.open(name!, { size: Number(args[0] ?? 1 << 20) });
      say({ created: segment.created, createdAt: segment.createdAt, size: segment.size });
      break;
    }
    case "write": { // write <name> <offset> <byte>
      using segment = Segment.open(name!, { size: 1 << 20 });
      segment.lock();
      new Uint8Array(segment.buffer)[Number(args[0])] = Number(args[1]);
      segment.unlock();
      say({ wrote: Number(args[1]) });
      break;
    }
    case "read": { // read <name> <offset>
      using segment = Segment.open(name!, { size: 1 << 20 });
      segment.lock(false);
      say({ read: new Uint8Array(segment.buffer)[Number(args[0])] });
      segment.unlock();
      break;
    }
    case "hold": { // hold <name> <ms> <offset> <byte>: lock, wait, write the byte, unlock
      using segment = Segment.open(name!, { size: 1 << 20 });
      segment.lock();
      say({ locked: true });
      await sleep(Number(args[0]));
      new Uint8Array(segment.buffer)[Number(args[1])] = Number(args[2]);
      segment.unlock();
      say({ released: true });
      break;
    }
    case "die-holding": { // lock, then wait to be killed
      const segment = Segment.open(name!, { size: 1 << 20 });
      segment.lock();
      say({ locked: true });
      await sleep(600_000);
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
} catch (error) {
  const e = error as {
    name: string;
    message: string;
    code?: string;
    errno?: number;
    syscall?: string;
  };
  let exists: boolean | undefined;
  try {
    exists = Segment.exists(name!);
  } catch {
    exists = undefined;
  }
  say({
    error: e.name,
    message: e.message,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    exists,
  });
}
