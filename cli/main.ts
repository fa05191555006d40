/**
 * The `memalloc` command: look at and change the stores on this machine from a shell.
 *
 * ```sh
 * deno run -A jsr:@memalloc/memalloc/cli stores
 * npx memalloc stats sessions              # Node 26 (the package's bin)
 * bunx --bun memalloc get sessions s:42    # Bun
 * ```
 *
 * The same file runs under `deno run -A cli/main.ts`, `bun cli/main.ts` and
 * `node --experimental-ffi cli/main.ts`. Exit codes: 0 done; 1 the command ran and failed (a
 * store or key that does not exist, `verify` found problems, any error memalloc reports);
 * 2 the command line is wrong (unknown command or option, missing argument, bad number).
 * No command creates a store, except `set` and `increment` given `--create`.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import {
  type CliIo,
  type Command,
  type Input,
  oneLine,
  OutputClosed,
  print,
  usage,
  UsageError,
} from "./_command.ts";
import { COMMANDS } from "./commands.ts";

export type { CliIo };

/**
 * Runs the `memalloc` command line `args` (without the runtime and script) and returns its exit
 * code: 0 done, 1 the command failed (one line `memalloc: <message>` on stderr), 2 the command
 * line is wrong (one line naming what, pointing to `--help`). It never calls `process.exit`.
 *
 * @param args The arguments, e.g. `["stats", "sessions", "--json"]`.
 * @param io Where to write; the process's standard output and error by default.
 * @returns The exit code.
 *
 * @example Run a command and capture its output
 * ```ts
 * import { Memalloc } from "../memalloc.ts";
 * import { main } from "./main.ts";
 *
 * const name = `doc-${crypto.randomUUID()}`;
 * Memalloc.open(name, { maxMemory: 1 << 20 }).close();
 * let out = "";
 * const io = { stdout: (data: string | Uint8Array) => void (out += data), stderr: () => {}, isTTY: false };
 * console.log(await main(["set", name, "greeting", "Foobar"], io)); // 0
 * console.log(await main(["get", name, "greeting"], io), out); // 0 Foobar
 * console.log(await main(["get", name], io)); // 2
 * Memalloc.unlink(name);
 * ```
 */
export async function main(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (name === undefined) {
      throw new UsageError("memalloc: no command given (see memalloc --help)");
    }
    if (name === "--help" || name === "-h") {
      print(io, overview());
      return 0;
    }
    if (name === "help") {
      if (rest.length > 1) throw new UsageError(`memalloc help: one command at most`);
      const topic = rest[0];
      if (topic === undefined) print(io, overview());
      else print(io, commandHelp(command(topic)));
      return 0;
    }
    const found = command(name);
    const input = parse(name, found, rest, io);
    if (input === undefined) {
      print(io, commandHelp(found));
      return 0;
    }
    return await found.run(input);
  } catch (error) {
    if (error instanceof OutputClosed) return 0;
    if (error instanceof UsageError) {
      io.stderr(`${oneLine(error.message)}\n`);
      return 2;
    }
    io.stderr(`memalloc: ${oneLine(error instanceof Error ? error.message : String(error))}\n`);
    return 1;
  }
}

function command(name: string): Command {
  const found = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (found === undefined) {
    throw new UsageError(`memalloc: unknown command "${name}" (see memalloc --help)`);
  }
  return found;
}

/** The command's input, or `undefined` when it asks for help. */
function parse(name: string, found: Command, args: string[], io: CliIo): Input | undefined {
  const end = args.indexOf("--");
  const before = end < 0 ? args : args.slice(0, end);
  const wantsHelp = before.includes("--help") || before.includes("-h");
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...found.options,
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (wantsHelp) return undefined;
    throw usage(name, parseMessage(error));
  }
  if (parsed.values.help) return undefined;
  const { positionals } = parsed;
  const required = found.required;
  if (positionals.length < required.length) {
    throw usage(name, `missing ${required.slice(positionals.length).join(" ")}`);
  }
  const most = found.repeat ? Infinity : required.length + (found.optional?.length ?? 0);
  if (positionals.length > most) {
    throw usage(name, `unexpected argument "${positionals[most]}"`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  return { command: name, positionals, values, json: values.json === true, io };
}

/** parseArgs' error as a short message. */
function parseMessage(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'([^']*)'/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option !== undefined) {
    if (/^-\.?\d/.test(option)) {
      return `unknown option ${option}: a negative number goes after --, as in -- ${option}`;
    }
    return `unknown option ${option}`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option !== undefined) {
    const flag = option.split(" ")[0];
    return /does not take/.test(message)
      ? `option ${flag} takes no value`
      : `option ${flag} needs a value`;
  }
  return message;
}

function overview(): string {
  const synopses = Object.entries(COMMANDS).map(([name, c]) =>
    [
      name,
      ...c.required.map((arg, i) => c.repeat && i === c.required.length - 1 ? `${arg}...` : arg),
      ...(c.optional ?? []).map((arg) => `[${arg}]`),
    ].join(" ")
  );
  const width = Math.max(...synopses.map((synopsis) => synopsis.length));
  const lines = Object.values(COMMANDS).map((c, i) =>
    `  ${synopses[i]!.padEnd(width)}  ${c.summary}`
  );
  return `memalloc: look at and change the memalloc stores on this machine

Usage: memalloc <command> [arguments] [options]

${lines.join("\n")}

Every command takes --help, and --json for one JSON document on stdout (set: --json means its
VALUE is JSON). No command creates a store, except set and increment given --create: on a store
that does not exist the others exit 1 and change nothing. Only the commands that say so change a
store; get's read counts a hit or a miss in the store's shared counters. (Opening a store, which
every command and process does, repairs what a writer killed mid-write left, first.)

Exit codes: 0 done; 1 the command failed (a missing store or key, verify found problems, an
error from memalloc), with one line "memalloc: <message>" on stderr; 2 the command line is
wrong (unknown command or option, missing argument, bad number), with one line saying what.
Output whose reader goes away (memalloc keys NAME | head) ends the command quietly, with 0.

memalloc help <command> (or memalloc <command> --help) shows a command's help.`;
}

function commandHelp(found: Command): string {
  return `Usage: memalloc ${found.usage}\n\n${found.help}\n  -h, --help   This help`;
}

/**
 * The process's own standard output and error, and its SIGINT and SIGTERM. A write to a
 * standard output whose reader has gone (EPIPE: Deno and Bun throw it, Node emits it as an
 * event, after the write) makes the next write throw {@linkcode OutputClosed}, and ends `top`.
 */
function processIo(): CliIo {
  let closed = false;
  const stops = new Set<() => void>();
  const isEpipe = (error: unknown) => (error as { code?: unknown } | null)?.code === "EPIPE";
  const close = () => {
    closed = true;
    for (const stop of stops) stop();
  };
  process.stdout.on("error", (error: unknown) => {
    if (!isEpipe(error)) throw error;
    close();
  });
  const io: CliIo = {
    stdout(data) {
      if (closed) throw new OutputClosed();
      try {
        process.stdout.write(data);
      } catch (error) {
        if (!isEpipe(error)) throw error;
        close();
        throw new OutputClosed();
      }
    },
    stderr: (text) => void process.stderr.write(text),
    isTTY: process.stdout.isTTY === true,
    trapSignals(onSignal) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      stops.add(onSignal);
      return () => {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        stops.delete(onSignal);
      };
    },
  };
  if (typeof process.stdout.columns === "number") io.columns = process.stdout.columns;
  return io;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
