/**
 * The npm package as a user gets it: builds it (`scripts/build.ts`), packs it (`npm pack`), and
 * in a fresh folder outside the repository installs the tarball into a Bun project (`bun add`)
 * and into a Node project (`npm install`). There it runs the seed's example (the PHP library's
 * `Foobar123`) in each, has the Node project write a value that the Bun project reads, checks
 * the package's types with `tsc` as a consumer's `nodenext` project sees them, and checks that an
 * older Node.js gets memalloc's error rather than a crash. It runs the package's `memalloc` bin
 * there too (`npx memalloc`, `bunx --bun memalloc`, and `bunx` following the shebang to Node).
 * Prints each check, the time to import the package in each runtime (cold, as a process;
 * reported, never asserted), and ends with `consumer: N passed, N failed`.
 *
 * Usage: deno run -A scripts/consumer_test.ts
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Memalloc } from "../mod.ts";
import { startRedisServer } from "../bench/peers/redis.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) =>
  existsSync(`${root}node_modules/.bin/${name}`) ? `${root}node_modules/.bin/${name}` : name;
const node = bin("node");
const bun = bin("bun");
const run = Deno.env.get("MEMALLOC_TEST_RUN") || crypto.randomUUID().slice(0, 8);
const NODE_FLAGS = ["--experimental-ffi", "--disable-warning=ExperimentalWarning"];

let passed = 0;
let failed = 0;
const stores: string[] = [];

/** Runs a command; returns its output, or throws with it when it fails. */
function sh(command: string[], cwd: string, env: Record<string, string> = {}): string {
  const result = spawnSync(command[0]!, command.slice(1), {
    cwd,
    env: { ...Deno.env.toObject(), NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: 300_000,
  });
  if (result.status !== 0) {
    throw new Error(
      `${command.join(" ")} exited with ${
        result.status ?? result.signal
      }:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Counts and prints the outcome of one named check: passed, or failed with `error`. */
function report(name: string, error?: unknown): void {
  if (error === undefined) {
    passed++;
    console.log(`ok   ${name}`);
    return;
  }
  failed++;
  console.log(
    `FAIL ${name}\n     ${String((error as Error).message).replaceAll("\n", "\n     ")}`,
  );
}

/** Runs one named check and prints its outcome. */
function check(name: string, body: () => void): void {
  try {
    body();
  } catch (error) {
    return report(name, error ?? new Error(String(error)));
  }
  report(name);
}

/** {@linkcode check} for a body that awaits. */
async function checkAsync(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    return report(name, error ?? new Error(String(error)));
  }
  report(name);
}

function expect(actual: string, expected: string, what: string): void {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function store(label: string): string {
  const name = `test-${run}-consumer-${label}-${Deno.pid}`;
  stores.push(name);
  return name;
}

const work = mkdtempSync(join(tmpdir(), "memalloc-consumer-"));
try {
  // The package: built and packed as `npm publish` would.
  sh([Deno.execPath(), "run", "-A", "scripts/build.ts"], root);
  const packed = JSON.parse(sh(["npm", "pack", "--json", "--pack-destination", work], root)) as {
    filename: string;
    size: number;
    unpackedSize: number;
    files: { path: string; size: number }[];
  }[];
  const tarball = join(work, packed[0]!.filename);
  console.log(
    `package: ${packed[0]!.filename}, ${packed[0]!.size} B packed, ${
      packed[0]!.unpackedSize
    } B unpacked, ${packed[0]!.files.length} files:`,
  );
  for (const file of packed[0]!.files) console.log(`  ${file.path}  ${file.size} B`);

  // The seed's example, importing the package instead of the repository's mod.ts.
  const seed = readFileSync(`${root}tests/_seed_example.ts`, "utf8").replace(
    'from "../mod.ts"',
    'from "memalloc"',
  );
  if (!seed.includes('from "memalloc"')) throw new Error("the seed example imports no module");
  const writer = `import { Memalloc } from "memalloc";
const store = Memalloc.open(process.argv[2], { maxMemory: 1 << 20 });
store.write("from-node", { runtime: "node", version: process.versions.node, list: [1, 2, 3] });
store.close();
console.log("written");
`;
  const reader = `import { Memalloc } from "memalloc";
const store = Memalloc.open(process.argv[2], { maxMemory: 1 << 20 });
console.log(JSON.stringify(store.read("from-node")));
store.close();
`;
  const typed = `import { Memalloc, MemallocError, type MemallocStats } from "memalloc";
import { NearCache, RedisStore, type RedisStoreStats } from "memalloc/redis";
const store: Memalloc = Memalloc.open("typed", { maxMemory: 1 << 20, autoclean: 0.8 });
const stats: MemallocStats = store.stats();
const entries: number = stats.entries;
const error: MemallocError | undefined = undefined;
const remote: Promise<RedisStore> = RedisStore.connect("redis://127.0.0.1:6379", "typed");
const remoteStats: Promise<RedisStoreStats> = remote.then((store) => store.stats());
const near: Promise<NearCache> = remote.then((store) => NearCache.open("typed-near", store));
export { entries, error, near, remoteStats };
`;

  const bunApp = join(work, "bun-app");
  const nodeApp = join(work, "node-app");
  for (const [dir, name] of [[bunApp, "bun-app"], [nodeApp, "node-app"]] as const) {
    mkdirSync(dir);
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({ name, private: true, type: "module" }, null, 2),
    );
  }
  writeFileSync(join(bunApp, "seed.ts"), seed);
  writeFileSync(join(bunApp, "read.ts"), reader);
  writeFileSync(join(nodeApp, "seed.mjs"), seed);
  writeFileSync(join(nodeApp, "write.mjs"), writer);
  writeFileSync(join(nodeApp, "typed.ts"), typed);
  writeFileSync(
    join(nodeApp, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        strict: true,
        noEmit: true,
        types: [],
        lib: ["esnext"],
      },
      files: ["typed.ts"],
    }),
  );

  check("bun add installs the tarball into a Bun project", () => {
    sh([bun, "add", tarball], bunApp);
  });
  check(
    "npm install installs the tarball into a Node project, with no install script of its own",
    () => {
      sh(["npm", "install", "--no-audit", "--no-fund", tarball], nodeApp);
      const manifest = JSON.parse(
        readFileSync(join(nodeApp, "node_modules/memalloc/package.json"), "utf8"),
      );
      const hooks = ["preinstall", "install", "postinstall", "prepare"].filter((hook) =>
        manifest.scripts?.[hook] !== undefined
      );
      if (hooks.length > 0) throw new Error(`the package has install scripts: ${hooks.join(", ")}`);
      if (existsSync(join(nodeApp, "node_modules/memalloc/node_modules/cbor-x"))) {
        throw new Error("cbor-x was nested instead of shared");
      }
      // mod.js and the chunks it shares with redis.js.
      const dist = join(nodeApp, "node_modules/memalloc/dist");
      const bundled = [
        "mod.js",
        ...readdirSync(join(dist, "chunks")).filter((f) => f.endsWith(".js")).map((f) =>
          `chunks/${f}`
        ),
      ].map((file) => readFileSync(join(dist, file), "utf8")).join("\n");
      if (!bundled.includes('from "cbor-x/decode"')) throw new Error("cbor-x is not an import");
      if (bundled.includes('from "redis"')) throw new Error("memalloc itself imports redis");
    },
  );
  check("the seed example prints Foobar123 in the Bun project", () => {
    const name = store("seed-bun");
    expect(sh([bun, "seed.ts"], bunApp, { MEMALLOC_STORE: name }).trim(), "Foobar123", "bun");
  });
  check("the seed example prints Foobar123 in the Node project", () => {
    const name = store("seed-node");
    const out = sh([node, ...NODE_FLAGS, "seed.mjs"], nodeApp, { MEMALLOC_STORE: name });
    expect(out.trim(), "Foobar123", "node");
  });
  check("a value written by the Node project is read by the Bun project", () => {
    const name = store("cross");
    expect(sh([node, ...NODE_FLAGS, "write.mjs", name], nodeApp).trim(), "written", "node");
    const value = JSON.parse(sh([bun, "read.ts", name], bunApp));
    expect(value.runtime, "node", "runtime");
    expect(JSON.stringify(value.list), "[1,2,3]", "list");
  });
  check("the package's types check in a nodenext TypeScript project", () => {
    sh([bin("tsc"), "-p", "tsconfig.json"], nodeApp);
  });
  check("memalloc/redis without its optional peer redis names the missing package", () => {
    const result = spawnSync(
      node,
      ["--input-type=module", "-e", 'await import("memalloc/redis")'],
      {
        cwd: nodeApp,
        encoding: "utf8",
      },
    );
    if (result.status === 0) throw new Error("memalloc/redis loaded without redis");
    if (!/ERR_MODULE_NOT_FOUND/.test(result.stderr) || !/'redis'/.test(result.stderr)) {
      throw new Error(`unexpected error:\n${result.stderr}`);
    }
  });
  const redisServer = spawnSync("redis-server", ["--version"]).status === 0;
  if (redisServer) {
    await checkAsync(
      "with redis installed, memalloc/redis runs a RedisStore and a NearCache in Node and Bun",
      async () => {
        sh(
          ["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "redis@6.3.1"],
          nodeApp,
        );
        const script = `import { NearCache, RedisStore } from "memalloc/redis";
import { MemallocError } from "memalloc";
const store = await RedisStore.connect(process.argv[2], "consumer");
await store.write("greeting", "Foobar");
await store.write("greeting", (await store.read("greeting")) + "123");
const cache = await NearCache.open(process.argv[3], store);
await cache.get("greeting");
console.log(cache.peek("greeting") ?? await cache.get("greeting"));
cache.close();
await store.purge();
await store.close();
await store.read("x").catch((e) => console.log(e instanceof MemallocError, e.code));
`;
        writeFileSync(join(nodeApp, "remote.mjs"), script);
        const server = await startRedisServer();
        try {
          for (const runtime of [[node, ...NODE_FLAGS], [bun]]) {
            const near = store(`near-${runtime.length}`);
            stores.push(`${near}.near`);
            const out = sh([...runtime, "remote.mjs", server.url, near], nodeApp).trim();
            expect(out, "Foobar123\ntrue ERR_MEMALLOC_CLOSED", runtime[0]!);
          }
        } finally {
          await server.stop();
        }
      },
    );
  } else console.log("skip a RedisStore in the package: redis-server not installed");
  // The package's bin, `memalloc`, as npx and bunx run it. Its shebang runs `node` from PATH
  // with --experimental-ffi: put this Node 26 first there, as a user's PATH would have it.
  const node26 = { PATH: `${dirname(realpathSync(node))}:${Deno.env.get("PATH") ?? ""}` };
  const cliStore = store("cli");
  check("npx memalloc --help in the Node project prints the commands", () => {
    const bin = join(nodeApp, "node_modules/memalloc/dist/cli.js");
    const text = readFileSync(bin, "utf8");
    if (!text.startsWith("#!/usr/bin/env -S node --experimental-ffi ")) {
      throw new Error(`dist/cli.js starts with ${JSON.stringify(text.slice(0, 80))}`);
    }
    if ((statSync(bin).mode & 0o111) === 0) throw new Error("dist/cli.js is not executable");
    if (!text.includes('from "./mod.js"')) throw new Error("dist/cli.js does not import ./mod.js");
    const help = sh(["npx", "--no-install", "memalloc", "--help"], nodeApp, node26);
    if (!/^memalloc: look at and change the memalloc stores/.test(help)) {
      throw new Error(`unexpected help:\n${help}`);
    }
    for (const command of ["stores", "stats NAME", "get NAME KEY", "top NAME"]) {
      if (!help.includes(`  ${command} `)) throw new Error(`"${command}" is not listed:\n${help}`);
    }
  });
  check("npx memalloc set --create, stats and get in the Node project", () => {
    const args = ["set", cliStore, "greeting", "Foobar", "--create", "--max-memory", "1M"];
    expect(sh(["npx", "--no-install", "memalloc", ...args], nodeApp, node26), "", "set");
    const stats = sh(["npx", "--no-install", "memalloc", "stats", cliStore], nodeApp, node26);
    if (!/^entries\s+1$/m.test(stats) || !/^size\s+1\.0 MiB \(1048576 B\)$/m.test(stats)) {
      throw new Error(`unexpected stats:\n${stats}`);
    }
    const get = ["npx", "--no-install", "memalloc", "get", cliStore, "greeting"];
    const value = sh(get, nodeApp, node26);
    expect(value, "Foobar\n", "get");
  });
  check(
    "memalloc dashboard in the Node project serves its page and uPlot from the installed uplot",
    () => {
      // The bin started by a small Node script, which reads the address it prints, asks for the
      // page and the chart library, and stops it.
      const script = `
      const { spawn } = require("node:child_process");
      const child = spawn(process.execPath, ["--experimental-ffi", "--disable-warning=ExperimentalWarning",
        "node_modules/memalloc/dist/cli.js", "dashboard", "--port", "0", "--json"]);
      let out = "";
      child.stderr.on("data", (d) => process.stderr.write(d));
      child.stdout.on("data", async (d) => {
        out += d;
        if (!out.trimEnd().endsWith("}")) return;
        const { url } = JSON.parse(out);
        const page = await fetch(url);
        const js = await fetch(url + "assets/uPlot.iife.min.js");
        const text = await js.text();
        console.log(page.status, js.status, text.includes("uPlot"));
        child.kill("SIGTERM");
      });`;
      const answer = sh([node, "--input-type=commonjs", "-e", script], nodeApp, node26);
      expect(answer.trim(), "200 200 true", "page, uPlot, its text");
    },
  );
  check("bunx --bun memalloc stats and get in the Bun project read the store npx made", () => {
    const stats = sh([bun, "x", "--bun", "memalloc", "stats", cliStore, "--json"], bunApp);
    const figures = JSON.parse(stats);
    expect(String(figures.entries), "1", "entries");
    expect(String(figures.capacity), "1048576", "capacity");
    const value = sh([bun, "x", "--bun", "memalloc", "get", cliStore, "greeting"], bunApp);
    expect(value, "Foobar\n", "get");
  });
  check("bunx memalloc without --bun runs the shebang's node from PATH", () => {
    const value = sh([bun, "x", "memalloc", "get", cliStore, "greeting"], bunApp, node26);
    expect(value, "Foobar\n", "get");
    const missing = spawnSync(bun, ["x", "memalloc", "stats", `${cliStore}-none`], {
      cwd: bunApp,
      env: { ...Deno.env.toObject(), ...node26 },
      encoding: "utf8",
    });
    expect(String(missing.status), "1", "exit code for a missing store");
    if (!/^memalloc: Cannot open store ".*": there is no such store/.test(missing.stderr)) {
      throw new Error(`unexpected stderr: ${missing.stderr}`);
    }
    // With an older Node first on PATH, that node runs it, and stops at the shebang's flag.
    const old = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
    if (old !== undefined && Number(sh([old, "--version"], bunApp).slice(1).split(".")[0]) < 26) {
      const result = spawnSync(bun, ["x", "memalloc", "--help"], {
        cwd: bunApp,
        env: { ...Deno.env.toObject(), PATH: `${dirname(old)}:${Deno.env.get("PATH")}` },
        encoding: "utf8",
      });
      if (result.status === 0 || !/bad option: --experimental-ffi/.test(result.stderr)) {
        throw new Error(`${old} did not run the bin: ${result.status}\n${result.stderr}`);
      }
    }
  });
  const system = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
  const systemMajor = system === undefined
    ? 0
    : Number(sh([system, "--version"], nodeApp).trim().slice(1).split(".")[0]);
  if (system !== undefined && systemMajor < 26) {
    check(
      `Node.js ${systemMajor} (${system}) gets ERR_MEMALLOC_RUNTIME from the package, no crash`,
      () => {
        const name = store("old-node");
        const result = spawnSync(system!, ["seed.mjs"], {
          cwd: nodeApp,
          env: { ...Deno.env.toObject(), MEMALLOC_STORE: name },
          encoding: "utf8",
        });
        if (result.status === 0) throw new Error("the seed ran on a Node.js without node:ffi");
        if (
          !/ERR_MEMALLOC_RUNTIME/.test(result.stderr) ||
          !/Node\.js 26\.1 or later/.test(result.stderr)
        ) {
          throw new Error(`unexpected error:\n${result.stderr}`);
        }
        if (existsSync(`/dev/shm/memalloc.${name}`)) throw new Error("a store was created");
      },
    );
  } else console.log(`skip an older Node.js's error: no Node.js older than 26 here`);

  // Cold import: a new process that imports the package and exits (best of 5, reported only).
  const importTime = (command: string[], cwd: string) => {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      sh(command, cwd);
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };
  const times = {
    "node (import memalloc)": importTime(
      [node, ...NODE_FLAGS, "--input-type=module", "-e", 'await import("memalloc")'],
      nodeApp,
    ),
    "node (empty script)": importTime([node, "--input-type=module", "-e", ""], nodeApp),
    "bun (import memalloc)": importTime([bun, "-e", 'await import("memalloc")'], bunApp),
    "bun (empty script)": importTime([bun, "-e", ""], bunApp),
    "deno (import mod.ts)": importTime(
      [Deno.execPath(), "eval", "--quiet", `await import(${JSON.stringify(`${root}mod.ts`)})`],
      root,
    ),
    "deno (empty script)": importTime([Deno.execPath(), "eval", "--quiet", ""], root),
  };
  console.log("cold start of a process, best of 5 (ms):");
  for (const [what, ms] of Object.entries(times)) {
    console.log(`  ${what.padEnd(24)} ${ms.toFixed(0)}`);
  }
} finally {
  for (const name of stores) Memalloc.unlink(name);
  rmSync(work, { recursive: true, force: true });
}
console.log(`\nconsumer: ${passed} passed, ${failed} failed`);
Deno.exit(failed > 0 ? 1 : 0);
