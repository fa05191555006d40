/**
 * What the comparison benchmark (`compare_bench.ts`) and its child processes
 * (`_compare_child.ts`) share: the values every peer stores (the same bytes for all), the entry
 * names, and how a child attaches to a peer that the parent opened.
 *
 * @module
 */
import { encode } from "cbor-x";
import { openMemallocPeer } from "./peers/memalloc.ts";
import { openLmdbPeer } from "./peers/lmdb.ts";
import { openSqlitePeer } from "./peers/sqlite.ts";
import type { Peer } from "./peers/types.ts";

/** A deterministic byte pattern of `length` bytes. */
function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 131 + seed * 17 + (i >>> 8)) & 0xff);
}

/** The 100-byte value of the byte scenarios. */
export const VALUE_100: Uint8Array = pattern(100, 1);
/** The 4 KiB value of the large-write scenario. */
export const VALUE_4K: Uint8Array = pattern(4096, 2);
/** The 100-character (100-byte UTF-8) value of the string scenarios. */
export const STRING_100: string = Array.from(
  { length: 100 },
  (_, i) => String.fromCharCode(0x21 + ((i * 7) % 94)),
).join("");

/**
 * The structured value: a user record with a list of order lines, about 1 KiB once cbor-x has
 * encoded it (see {@linkcode STRUCTURED_BYTES} for the exact size).
 *
 * @returns A fresh object, the same every time.
 */
export function structuredValue(): Record<string, unknown> {
  const items = [];
  for (let i = 0; i < 14; i++) {
    items.push({ sku: `SKU-${1000 + i}`, qty: i + 1, price: 9.5 + i, note: "gift wrap: no" });
  }
  return {
    id: 12345,
    name: "Ada Lovelace",
    email: "ada@example.com",
    active: true,
    score: 97.5,
    tags: ["admin", "editor", "beta"],
    created: "2024-01-02T03:04:05.000Z",
    address: { street: "12 St James's Square", city: "London", zip: "SW1Y 4JH" },
    items,
  };
}

/** {@linkcode structuredValue} encoded with cbor-x's default `encode`, as the peers store it. */
export const STRUCTURED_BYTES: Uint8Array = Uint8Array.from(encode(structuredValue()));

/**
 * `count` entry names of 16 bytes each: `prefix` then the index, zero-padded.
 *
 * @param prefix One or two ASCII characters, e.g. `"r:"`.
 * @param count How many names.
 * @returns The names, in index order.
 */
export function names(prefix: string, count: number): string[] {
  const width = 16 - prefix.length;
  return Array.from({ length: count }, (_, i) => prefix + String(i).padStart(width, "0"));
}

/** Entries the two-process scenario reads and overwrites (names `"p:..."`). */
export const SHARED_NAMES = 1024;

/**
 * Set R of the scenario with a writer on other names: the `SHARED_NAMES` entries (names
 * `"a:..."`) that its reader reads.
 */
export const READER_NAMES: readonly string[] = names("a:", SHARED_NAMES);

/**
 * Set W of that scenario: the `SHARED_NAMES` entries (names `"b:..."`, none of them in
 * {@linkcode READER_NAMES}) that its writer overwrites.
 */
export const WRITER_NAMES: readonly string[] = names("b:", SHARED_NAMES);

/** The peers that the multi-process scenarios run in several processes at once. */
export type SharedPeerKind = "memalloc" | "lmdb" | "sqlite";

/**
 * What a child process of the multi-process scenarios does (see `_compare_child.ts`): `both`
 * reads, then overwrites, the `"p:..."` entries (the two-process scenario); `read-set` reads
 * {@linkcode READER_NAMES}; `write-set` overwrites {@linkcode WRITER_NAMES}.
 */
export const CHILD_ROLES = ["both", "read-set", "write-set", "increment"] as const;

/** One of {@linkcode CHILD_ROLES}. */
export type ChildRole = typeof CHILD_ROLES[number];

/**
 * Attaches to a peer that another process opened, at its `location`.
 *
 * @param kind Which peer.
 * @param location The other process's `peer.location`.
 * @returns The peer (the data stays in place when it is closed).
 * @throws {Error} When the peer cannot be opened here.
 */
export async function attachPeer(kind: SharedPeerKind, location: string): Promise<Peer> {
  let reason = "";
  const onUnavailable = (_name: string, why: string) => void (reason = why);
  const peer = kind === "memalloc"
    ? openMemallocPeer({ name: location })
    : kind === "lmdb"
    ? await openLmdbPeer({ path: location, onUnavailable })
    : await openSqlitePeer({ path: location, onUnavailable });
  if (peer === undefined) throw new Error(`Cannot attach to ${kind} at ${location}: ${reason}`);
  return peer;
}

/** Milliseconds since the epoch, with the sub-millisecond precision of `performance.now()`. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
