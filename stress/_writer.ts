/**
 * A writer process for the stress harness (`stress/stress.ts`); it runs until it is killed.
 *
 * Usage: `_writer.ts <store> <writer-id> <max-memory> <names> [--die-in-open <ms>]`
 *
 * Prints one JSON line `{"opening":true}` just before `Memalloc.open` and `{"ready":true}` just
 * after, so the harness can tell in which phase each kill landed. Then, forever, on names of the
 * shared pool (`n000` .. `n<names-1>`): writes self-checking values (three shapes, payloads from
 * none to 16 K characters, so the heap splits and merges blocks and evicts constantly),
 * overwrites, deletes, reads and checks, calls `clean()` now and then and `purge()` rarely.
 * Nearly all of its time is spent in `write()`, most of it holding the store's lock, so a
 * SIGKILL at a random moment often lands in the middle of a mutation.
 *
 * `--die-in-open <ms>`: a Worker (`_self_kill.ts`) sends SIGKILL to this process that long after
 * `Memalloc.open` starts, so that the kill lands inside the creation of the segment and store,
 * to the microsecond (the harness's own kills cannot aim that well).
 *
 * On any error (a thrown exception, or a value read back that fails its check) it prints
 * `{"error": "..."}` and exits with code 1, which the harness reports as a failure. It exits
 * by itself when its parent (the harness) is gone.
 *
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { Memalloc } from "../mod.ts";
import { checkValue, describe, makeValue, MAX_PAYLOAD, poolName } from "./_value.ts";
import type { ValueShape } from "./_value.ts";
import type { SelfKillRequest } from "./_self_kill.ts";
import { mulberry32 } from "../tests/_random.ts";
import { startThread } from "../tests/_thread.ts";

/** Writes one line to stdout at once (no buffering: the process may be killed any moment). */
function say(message: Record<string, unknown>): void {
  writeSync(1, JSON.stringify(message) + "\n");
}

/** Starts the `--die-in-open` timer; returns the function that starts its clock. */
async function armSelfKill(delayMs: number): Promise<() => void> {
  const worker = await startThread(new URL("./_self_kill.ts", import.meta.url));
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const armed = new Promise((resolve) => worker.onMessage(resolve));
  worker.postMessage({ flag, delayMs } satisfies SelfKillRequest);
  await armed;
  return () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
}

async function main(): Promise<void> {
  const [storeName, writer, maxMemoryText, namesText] = process.argv.slice(2);
  const dieAt = process.argv.indexOf("--die-in-open");
  const dieInOpen = dieAt > 0 ? Number(process.argv[dieAt + 1]) : undefined;
  const maxMemory = Number(maxMemoryText);
  const names = Number(namesText);
  if (!storeName || !writer || !Number.isInteger(maxMemory) || !Number.isInteger(names)) {
    throw new Error("usage: _writer.ts <store> <writer-id> <max-memory> <names>");
  }
  const pool = Array.from({ length: names }, (_, i) => poolName(i));
  const random = mulberry32(crypto.getRandomValues(new Uint32Array(1))[0]!);
  const parent = process.ppid;

  const startClock = dieInOpen === undefined ? undefined : await armSelfKill(dieInOpen);
  say({ opening: true, pid: process.pid });
  startClock?.();
  const opening = performance.now();
  const store = Memalloc.open(storeName, { maxMemory });
  say({ ready: true, pid: process.pid, openMs: performance.now() - opening });

  for (let seq = 0;; seq++) {
    if ((seq & 1023) === 0 && process.ppid !== parent) {
      store.close(); // the harness is gone: do not outlive it
      process.exit(0);
    }
    const name = pool[Math.floor(random() * names)]!;
    const op = random();
    if (op < 0.8) {
      const r = random();
      const shape: ValueShape = r < 0.6 ? "string" : r < 0.85 ? "bytes" : "cbor";
      const s = random();
      const length = s < 0.3
        ? Math.floor(random() * 64)
        : s < 0.7
        ? 64 + Math.floor(random() * 4032)
        : 4096 + Math.floor(random() * (MAX_PAYLOAD - 4096));
      const offset = Math.floor(random() * 0x7fffffff);
      store.write(name, makeValue(shape, name, writer, seq, length, offset));
    } else if (op < 0.92) {
      store.delete(name);
    } else if (op < 0.997) {
      const value = store.read(name);
      if (value !== undefined) {
        const problem = checkValue(name, value);
        if (problem !== undefined) {
          throw new Error(
            `Torn value read back by writer ${writer}: ${problem}: ${describe(value)}`,
          );
        }
      }
    } else if (op < 0.99995) {
      store.clean();
    } else {
      store.purge();
    }
  }
}

main().catch((error) => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  say({ error: text, stack: error instanceof Error ? error.stack : undefined });
  process.exit(1);
});
