/**
 * A Worker for `_writer.ts --die-in-open`: kills its own process with SIGKILL a precise time
 * after the writer starts `Memalloc.open`, to land inside the store's creation (about a
 * millisecond long, too short for a kill from the harness to hit reliably).
 *
 * It gets `{ flag, delayMs }`, says `armed`, waits until the writer sets `flag[0]` (just before
 * `Memalloc.open`), spins for `delayMs`, and sends SIGKILL to the process.
 *
 * @module
 */
import process from "node:process";
import { parentPort } from "../tests/_thread.ts";

/** What the writer posts to arm the timer. */
export interface SelfKillRequest {
  /** One 32-bit word on a SharedArrayBuffer; the writer sets it to 1 to start the clock. */
  flag: Int32Array;
  /** Time from the start signal to the SIGKILL, in ms. */
  delayMs: number;
}

const parent = await parentPort();

parent.onMessage(({ flag, delayMs }: SelfKillRequest) => {
  parent.postMessage("armed");
  Atomics.wait(flag, 0, 0);
  const until = performance.now() + delayMs;
  while (performance.now() < until) {
    // Spin: a timer would not be precise to the microsecond.
  }
  process.kill(process.pid, "SIGKILL");
});
