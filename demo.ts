/**
 * memalloc demo: Deno and Bun processes share one store. Each writes values and reads what the
 * others wrote; then the store fills up and evicts its oldest entries at the watermark.
 *
 * Run with `npm run demo` (or `deno run -A demo.ts`: it starts the other processes, which
 * need only `--allow-ffi`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Memalloc } from "./mod.ts";
import { runtime } from "./ffi/runtime.ts";

const OPTIONS = { maxMemory: 256 * 1024, autoclean: 0.8 };
const [role, storeName] = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const who = `${runtime}[${process.pid}]`;
const KiB = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

function child(step: string, name: string): void {
  using store = Memalloc.open(name, OPTIONS);
  if (step === "bun-writes") {
    store.write("greeting", `hello from ${who}`);
    store.write("session:42", { user: "ada", roles: ["admin"], since: new Date("2026-01-01") });
    store.write("hits", new Map([["/", 10], ["/about", 3]]));
    console.log(`  ${who} wrote greeting, session:42 (an object), hits (a Map)`);
  } else if (step === "deno-reads") {
    console.log(`  ${who} read greeting   = ${JSON.stringify(store.read("greeting"))}`);
    console.log(`  ${who} read session:42 =`, store.read("session:42"));
    const hits = store.read<Map<string, number>>("hits")!;
    hits.set("/", hits.get("/")! + 1);
    store.write("hits", hits);
    store.write("reply", new TextEncoder().encode(`bytes from ${who}`));
    console.log(`  ${who} bumped hits["/"] to ${hits.get("/")} and wrote reply (bytes)`);
  } else if (step === "bun-reads") {
    console.log(`  ${who} read hits       =`, store.read("hits"));
    const reply = store.read<Uint8Array>("reply")!;
    console.log(
      `  ${who} read reply      = ${reply.constructor.name} "${new TextDecoder().decode(reply)}"`,
    );
  }
}

function main(): void {
  const root = fileURLToPath(new URL(".", import.meta.url));
  const bin = (name: string) =>
    existsSync(`${root}node_modules/.bin/${name}`) ? `${root}node_modules/.bin/${name}` : name;
  const script = fileURLToPath(import.meta.url);
  // A store of this run's own: the demo never touches a store someone else may be using.
  const name = `demo-${process.pid}`;
  // The children need nothing but FFI: under Deno, exactly --allow-ffi.
  const spawn = (rt: "deno" | "bun", step: string) => {
    const argv = rt === "deno" ? ["run", "--allow-ffi", script, step, name] : [script, step, name];
    const result = spawnSync(bin(rt), argv, { stdio: "inherit" });
    if (result.status !== 0) throw new Error(`${rt} ${step} failed`);
  };

  using store = Memalloc.open(name, OPTIONS);
  console.log(`memalloc demo: store "${name}" at /dev/shm/memalloc.${name}`);
  console.log(
    `  ${KiB(store.maxMemory)}, watermark ${store.autoclean * 100}% (${
      KiB(store.stats().watermark)
    }): a write that finds the store full first evicts the oldest entries down to it\n`,
  );

  console.log("1. Processes of both runtimes share values:");
  spawn("bun", "bun-writes");
  spawn("deno", "deno-reads");
  spawn("bun", "bun-reads");

  console.log(
    "\n2. The store fills up. The write that finds no room evicts the oldest entries until usage" +
      "\n   is at the watermark, then stores its own value on top of that:",
  );
  let page = 0;
  while (store.stats().evictions === 0) store.write(`page:${page++}`, "<html>".padEnd(4000, "."));
  let stats = store.stats();
  const oldest = Array.from({ length: page }, (_, i) => `page:${i}`).find((n) => store.read(n));
  console.log(`  ${who} wrote ${page} pages of 4 KB; ${stats.evictions} oldest entries evicted`);
  console.log(
    `  first entries gone: greeting = ${store.read("greeting")}; oldest page left: ${oldest}`,
  );
  const over = stats.bytesUsed - stats.watermark;
  console.log(
    `  usage ${KiB(stats.bytesUsed)}: the watermark, ${KiB(stats.watermark)}, ${
      over > 0 ? `plus ${(over / 1024).toFixed(1)} KiB of the page just written` : "or less"
    }`,
  );
  const cleaned = store.clean();
  stats = store.stats();
  console.log(
    `  clean() evicts down to the watermark on demand: ${cleaned} more evicted, usage ${
      KiB(stats.bytesUsed)
    }`,
  );

  console.log("\n3. Final stats(), shared by every process:");
  store.write("last", "written after eviction");
  store.read("nothing-here");
  stats = store.stats();
  for (const key of ["entries", "bytesUsed", "bytesFree", "capacity", "watermark"] as const) {
    console.log(`  ${key.padEnd(10)} ${stats[key].toLocaleString("en-US")}`);
  }
  for (const key of ["writes", "hits", "misses", "evictions", "deletes", "repairs"] as const) {
    console.log(`  ${key.padEnd(10)} ${stats[key].toLocaleString("en-US")}`);
  }
  store.close();
  Memalloc.unlink(name);
}

if (role === undefined) main();
else child(role, storeName!);
