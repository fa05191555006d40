/**
 * memalloc demo: a Deno process and a Bun process share one segment; each sees what the other
 * wrote. Run with `npm run demo` (or `deno run -A demo.ts`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Segment } from "./ffi/segment.ts";
import { runtime } from "./ffi/runtime.ts";

const NAME = "demo";
const SLOT = 4096; // where the message lives in the segment: [u32 length][UTF-8 bytes]
const [role] = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);

function append(text: string): string {
  using segment = Segment.open(NAME, { size: 1 << 20 });
  segment.lock();
  try {
    const view = new DataView(segment.buffer);
    const bytes = new Uint8Array(segment.buffer);
    const length = view.getUint32(SLOT, true);
    const before = new TextDecoder().decode(bytes.subarray(SLOT + 4, SLOT + 4 + length));
    const after = new TextEncoder().encode(before + text);
    bytes.set(after, SLOT + 4);
    view.setUint32(SLOT, after.length, true);
    return before;
  } finally {
    segment.unlock();
  }
}

if (role === "child") {
  const saw = append(` + ${runtime} (pid ${process.pid})`);
  console.log(`  ${runtime} process ${process.pid} saw: "${saw}"`);
} else {
  Segment.unlink(NAME);
  const root = fileURLToPath(new URL(".", import.meta.url));
  const bin = (n: string) =>
    existsSync(`${root}node_modules/.bin/${n}`) ? `${root}node_modules/.bin/${n}` : n;
  const script = fileURLToPath(import.meta.url);
  console.log(`memalloc demo: segment /dev/shm/memalloc.${NAME}, shared by Deno and Bun\n`);
  append(`written by ${runtime} (pid ${process.pid})`);
  for (const child of ["bun", "deno", "bun"]) {
    const argv = child === "deno" ? ["run", "-A", script, "child"] : [script, "child"];
    const result = spawnSync(bin(child), argv, { stdio: "inherit" });
    if (result.status !== 0) throw new Error(`${child} child failed`);
  }
  console.log(`\n  final: "${append("")}"`);
  Segment.unlink(NAME);
}
