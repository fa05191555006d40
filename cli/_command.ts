/**
 * What the `memalloc` commands share: their types, the usage error (exit 2), output helpers,
 * the parsing of numbers and sizes, and the one way they open a store.
 *
 * @module
 */
import { Memalloc } from "../memalloc.ts";
import { MemallocError } from "../errors.ts";

/** Where the `memalloc` command reads its context and writes its output. */
export interface CliIo {
  /** Writes to standard output (text as UTF-8, bytes as they are). */
  stdout(data: string | Uint8Array): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Whether standard output is a terminal (`top` redraws in place there). */
  isTTY: boolean;
  /** The terminal's width in columns, when known. */
  columns?: number;
  /**
   * Calls `onSignal` on Ctrl-C (SIGINT) and SIGTERM until the returned function is called;
   * `top` uses it to end its view and restore the cursor.
   */
  trapSignals?(onSignal: () => void): () => void;
}

/** The parsed command line a command runs with. */
export interface Input {
  /** The command's name (`"get"`). */
  command: string;
  /** The arguments after it that are not options, in order. */
  positionals: string[];
  /** The options given, by name without the dashes. */
  values: Record<string, string | boolean | undefined>;
  /** Whether `--json` was given. */
  json: boolean;
  /** Where to write. */
  io: CliIo;
}

/** An option of a command, as `node:util` parseArgs takes it. */
export interface OptionSpec {
  /** `"string"` for an option that takes a value, `"boolean"` for a flag. */
  type: "string" | "boolean";
  /** A one-letter alias (`"l"` for `-l`). */
  short?: string;
}

/** One `memalloc` command: its help, its arguments and what it does. */
export interface Command {
  /** One line for `memalloc --help`. */
  summary: string;
  /** What follows `memalloc <command>` in the usage line. */
  usage: string;
  /** Names of the required positional arguments. */
  required: string[];
  /** Names of the optional ones, after them. */
  optional?: string[];
  /** Whether the last required argument may repeat. */
  repeat?: boolean;
  /** The options besides `--help` and `--json`. */
  options?: Record<string, OptionSpec>;
  /** The help text after the usage line. */
  help: string;
  /** Runs the command; returns its exit code (0, or 1 when it failed). */
  run(input: Input): number | Promise<number>;
}

/** A command line that cannot run: exit 2 with one line on stderr. */
export class UsageError extends Error {}

/**
 * Standard output was closed by its reader (`memalloc keys NAME | head -1`): the command ends
 * quietly, with exit 0, as there is no one left to tell.
 */
export class OutputClosed extends Error {}

/** The help of `--create` and `--max-memory`. */
export const CREATE_HELP = `
  --create            Create the store when it does not exist (else: exit 1, nothing created)
  --max-memory SIZE   Size of a store --create makes: bytes, or with K, M or G (KiB, MiB, GiB);
                      default 50M. An existing store keeps its size.`;

/** What `set` and `increment` say of a missing store. */
export const CREATE_RULE =
  `A store that does not exist is an error (exit 1), and nothing is created, unless --create.`;

/** What every other command that takes a store name says of a missing store. */
export const STORE_RULE =
  `A store that does not exist is an error (exit 1), and nothing is created.`;

/** A usage error of the command `name`, pointing to its help. */
export function usage(name: string, message: string): UsageError {
  return new UsageError(`memalloc ${name}: ${message} (see memalloc ${name} --help)`);
}

/** Text on one line: newlines and the spaces around them become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Writes a line to standard output. */
export function print(io: CliIo, text: string): void {
  io.stdout(`${text}\n`);
}

/** Writes one JSON document (indented by two spaces) to standard output. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** A positional argument that parsing made sure is there. */
export function arg(input: Input, index: number): string {
  return input.positionals[index]!;
}

/** A whole number from `min` up, from an option or argument; a usage error otherwise. */
export function wholeNumber(input: Input, what: string, text: string, min: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw usage(input.command, `${what} must be a whole number from ${min} up, got "${text}"`);
  }
  return value;
}

const DURATION_UNITS: Record<string, number> = {
  "": 1,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration such as `1500`, `1500ms`, `30s`, `5m`, `2h` or `1d`, in whole milliseconds; `0` is
 * no expiry.
 */
export function duration(input: Input, what: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$/i.exec(text);
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2]!.toLowerCase()]! : Number.NaN;
  if (!Number.isSafeInteger(ms)) {
    throw usage(
      input.command,
      `${what} must be a whole number of milliseconds, or a duration such as 30s, 5m or 2h, got "${text}"`,
    );
  }
  return ms;
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A size such as `1048576`, `512K`, `8M`, `1.5G` (binary units), in bytes. */
export function size(input: Input, what: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]! : Number.NaN;
  if (!Number.isFinite(bytes) || !Number.isInteger(bytes)) {
    throw usage(
      input.command,
      `${what} must be a whole number of bytes, or a size such as 512K, 8M or 1G, got "${text}"`,
    );
  }
  return bytes;
}

/**
 * Opens the store named by the first argument with its own settings, never creating it, or, for
 * a command given `--create`, creating it with `--max-memory` when it does not exist.
 */
export function open(input: Input, creates = false): Memalloc {
  const name = arg(input, 0);
  const maxMemory = input.values["max-memory"];
  const create = input.values.create === true;
  if (typeof maxMemory === "string" && !create) {
    throw usage(input.command, "--max-memory applies to a store --create makes: add --create");
  }
  if (!create) {
    try {
      return Memalloc.open(name, { create: false });
    } catch (error) {
      if (creates && error instanceof MemallocError && error.code === "ERR_MEMALLOC_NOT_FOUND") {
        throw new MemallocError(`${error.message}; add --create to create it`, {
          code: error.code,
          store: name,
          cause: error,
        });
      }
      throw error;
    }
  }
  return Memalloc.open(
    name,
    typeof maxMemory === "string" ? { maxMemory: size(input, "--max-memory", maxMemory) } : {},
  );
}
