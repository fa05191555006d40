/**
 * CBOR records over a table of structures that every process of a store shares: the encoding of
 * kind {@linkcode KIND_RECORDS} (allocator/codec.ts), for plain objects and arrays.
 *
 * A record is an object written as the number of its structure (its list of keys) and then its
 * values, without the keys; cbor-x's `structures` option does the encoding and compiles, per
 * structure, a reader that builds the object in one go. Measured on the benchmark's 1 KiB
 * session object (a few structures), against the JSON text it replaces, per value:
 *
 * | figure                            | Deno             | Bun              | Node             |
 * | --------------------------------- | ---------------- | ---------------- | ---------------- |
 * | decode alone                      | 2.5 µs (JSON 7.0) | 2.2 µs (3.1)    | 2.6 µs (6.6)     |
 * | `read()`, whole                   | 3.1 µs (5.7-10)  | about as JSON (3-5) | 3.9 µs (6.6-10) |
 * | encode alone                      | 4.1 µs (JSON 2.7) | 3.0 µs (2.1)    | 5.3 µs (2.0)     |
 * | `write()`, whole                  | 9.6 µs (6.0)     | 6.9 µs (6.0)     | 9.9 µs (9.2)     |
 * | overwrites/s (`bench/compare_bench.ts`) | 81k (JSON 138k) | 97k (142k)   | 71k (108k)       |
 * | bytes                             | 659 (JSON 1,130) | the same         | the same         |
 *
 * The table lives in the segment (layout.ts `ST_RECORDS`), so a structure one process adds is
 * there for every other, of any runtime:
 * - It only grows. A writer that meets a new shape saves the table with it under the store's
 *   lock, on condition that nobody changed it since this process read it (its version); when
 *   somebody did, it reads the table again and encodes the value again (cbor-x's
 *   `saveStructures` protocol). The table is saved before the value that needs it is written,
 *   so any process that reads the value finds the structure in the table.
 * - A save appends structures, or extends one: cbor-x gives an object with a structure's keys
 *   and more keys after them that structure's number, with the longer key list. A record
 *   carries its count of values, so the values written with the shorter list read the same.
 * - Every value starts with the table's lineage and version (u32 each, little-endian): a reader
 *   whose copy of the table is older, or of another lineage, reads it again first (under the
 *   lock: once per save per process); a reader that meets a structure it does not know does too.
 * - The lineage is a random number chosen when the table is first made. A purge keeps the
 *   table, but should damage ever lose it, the next table has another lineage, and a value
 *   written over the old one is refused as corrupt rather than read with the wrong keys.
 * - At most {@linkcode MAX_SHARED_STRUCTURES} structures are shared; past them, cbor-x writes a
 *   value's new shapes inside the value itself (still correct, only larger and slower).
 *
 * Which values: those that JSON text would hold exactly (the codec's walk decides), so a record
 * never needs an escape, a cycle or a tag.
 *
 * @module
 */
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import { CBOR_OPTIONS, type CborOptions } from "./codec.ts";
import type { RecordTable } from "./store.ts";

/** What {@linkcode Records} needs from its store (allocator/store.ts `Store`). */
export interface RecordTableStore {
  /** The table, copied out under the lock; `undefined` while there is none. */
  recordTable(): RecordTable | undefined;
  /**
   * Replaces the table if it is still of `lineage` at `version`; the new one is at `version + 1`
   * (1 when there was none).
   * @returns Its lineage; 0 when it changed meanwhile; -1 when there is no room for it; -2 when
   * the store's lock is held by this process's `update`.
   */
  saveRecordTable(lineage: number, version: number, bytes: Uint8Array): number;
}

/** Most structures the table holds. Part of the format: never change it. */
export const MAX_SHARED_STRUCTURES = 128;

/** Bytes before a record value's CBOR: the table's lineage and version (u32 each). */
export const PREFIX_BYTES = 8;

/** The options of the records encoder and decoder: the codec's, with records on. */
const OPTIONS: CborOptions = {
  ...CBOR_OPTIONS,
  useRecords: true,
  maxSharedStructures: MAX_SHARED_STRUCTURES,
  // A record value has no byte strings; damaged bytes might: never hand out a view of the input.
  copyBuffers: true,
};

/** The table's own encoding: plain CBOR of an array of arrays of strings. */
const tableEncoder = new Encoder({ useRecords: false, variableMapSize: true });
const tableDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** cbor-x's shared data: the structures and their version. */
interface Shared {
  structures: string[][];
  version: number;
}

/** The CBOR after the prefix, by the record value's bytes (see {@linkcode Records.decode}). */
const bodies = new WeakMap<Uint8Array, Uint8Array>();

/** A structures array cbor-x fills from getStructures before it next encodes. */
function unread(): string[][] {
  const structures: string[][] & { uninitialized?: boolean } = [];
  structures.uninitialized = true;
  return structures;
}

/** There is no room in the store for the table: the value is written without records. */
class NoRoom extends Error {}

/**
 * The records codec of one open store in this process: its copy of the shared table, an encoder
 * and a decoder over it. Not safe to share between stores.
 *
 * @example Two handles of one store share structures through the segment
 * ```ts ignore
 * const a = new Records(storeA), b = new Records(storeB); // two handles of one segment
 * const bytes = a.encode({ id: 1, name: "Ada" })!; // saves the structure [id, name]
 * b.decode(bytes); // { id: 1, name: "Ada" }: b reads the table to learn it
 * ```
 */
export class Records {
  readonly #store: RecordTableStore;
  /** The lineage and version of the table as the encoder last read or saved it. */
  #encoderLineage = 0;
  #encoderVersion = 0;
  /** The lineage and version of the table as the decoder last read it (-1: not read yet). */
  #decoderLineage = -1;
  #decoderVersion = 0;
  // cbor-x reads and replaces `structures` on both, but does not declare it.
  readonly #encoder: Encoder & { structures: string[][] };
  readonly #decoder: Decoder & { structures: string[][] };
  #scratch = new Uint8Array(4096);
  #prefix = new DataView(this.#scratch.buffer, 0, PREFIX_BYTES);
  /** Whether a value needed a structure that could not be saved then (inside `update`). */
  #deferred = false;

  constructor(store: RecordTableStore) {
    this.#store = store;
    this.#encoder = new Encoder(
      {
        ...OPTIONS,
        structures: unread(),
        getStructures: () => this.#loadForEncoder(),
        saveStructures: (shared: Shared) => this.#save(shared),
      } as unknown as ConstructorParameters<typeof Encoder>[0],
    ) as Encoder & {
      structures: string[][];
    };
    this.#decoder = new Decoder(
      {
        ...OPTIONS,
        structures: [],
        getStructures: () => this.#loadForDecoder(),
      } as unknown as ConstructorParameters<typeof Decoder>[0],
    ) as Decoder & {
      structures: string[][];
    };
  }

  /**
   * Encodes a value the codec's walk found JSON-safe.
   *
   * @returns The lineage then the CBOR, in a buffer the next call writes again (copy it); or
   * `undefined` when the value needs a new structure and the table cannot take it now (no room
   * in the store, or inside `update`'s callback: see {@linkcode Records.learnDeferred}): then
   * store the value another way.
   */
  encode(value: unknown): Uint8Array | undefined {
    let cbor: Uint8Array;
    try {
      cbor = this.#encoder.encode(value);
    } catch (error) {
      // cbor-x keeps the structures it added but could not save: forget them all, so that no
      // later value refers to one the table does not have.
      this.#encoder.structures = unread();
      if (error instanceof NoRoom) return undefined;
      throw error;
    }
    const length = PREFIX_BYTES + cbor.length;
    if (this.#scratch.length < length) {
      this.#scratch = new Uint8Array(Math.max(length, this.#scratch.length * 2));
      this.#prefix = new DataView(this.#scratch.buffer, 0, PREFIX_BYTES);
    }
    // The table this value needs: a reader with an older version (or another lineage) reads the
    // table again first, since a save may have extended a structure it knows.
    this.#prefix.setUint32(0, this.#encoderLineage, true);
    this.#prefix.setUint32(4, this.#encoderVersion, true);
    this.#scratch.set(cbor, PREFIX_BYTES);
    return this.#scratch.subarray(0, length);
  }

  /**
   * After a store's `update`: when a value encoded inside it needed a structure the table could
   * not take then (the lock was held), encodes `value` again to save that structure, so the
   * next value of its shape is records. The value itself went as JSON text.
   */
  learnDeferred(value: unknown): void {
    if (!this.#deferred) return;
    this.#deferred = false;
    this.encode(value);
  }

  /**
   * Decodes a value {@linkcode Records.encode} wrote, in this process or any other.
   *
   * @throws {TypeError} When the bytes are not records over this store's table (damage).
   */
  decode(bytes: Uint8Array): unknown {
    if (bytes.length <= PREFIX_BYTES) {
      throw new TypeError(`Cannot decode records: ${bytes.length} bytes is too short`);
    }
    const lineage = (bytes[0]! | bytes[1]! << 8 | bytes[2]! << 16 | bytes[3]! << 24) >>> 0;
    const version = (bytes[4]! | bytes[5]! << 8 | bytes[6]! << 16 | bytes[7]! << 24) >>> 0;
    if (
      lineage !== 0 && (lineage !== this.#decoderLineage || version > this.#decoderVersion)
    ) {
      this.#decoder.structures = this.#loadForDecoder().structures;
      if (lineage !== this.#decoderLineage || version > this.#decoderVersion) {
        throw new TypeError(
          "Cannot decode records: the table of structures they were written with is gone",
        );
      }
    }
    // The reads hand in the same few views of their scratch: the CBOR's view of each, made once,
    // keeps the DataView cbor-x caches on it (a new subarray per read costs V8 about 180 ns).
    let body = bodies.get(bytes);
    if (body === undefined) bodies.set(bytes, body = bytes.subarray(PREFIX_BYTES));
    try {
      return this.#decoder.decode(body);
    } catch (error) {
      throw new TypeError(
        `Cannot decode records: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  /** The table as the segment has it now. */
  #read(): { lineage: number; version: number; structures: string[][] } {
    const table = this.#store.recordTable();
    if (table === undefined) return { lineage: 0, version: 0, structures: [] };
    const structures = tableDecoder.decode(table.bytes) as unknown;
    if (
      !Array.isArray(structures) || structures.length > MAX_SHARED_STRUCTURES ||
      !structures.every((keys) =>
        Array.isArray(keys) && keys.every((key) => typeof key === "string")
      )
    ) {
      throw new TypeError("Cannot read the table of record structures: it is damaged");
    }
    return { lineage: table.lineage, version: table.version, structures: structures as string[][] };
  }

  #loadForEncoder(): Shared {
    const { lineage, version, structures } = this.#read();
    this.#encoderLineage = lineage;
    this.#encoderVersion = version;
    return { structures, version };
  }

  #loadForDecoder(): Shared {
    const { lineage, version, structures } = this.#read();
    this.#decoderLineage = lineage;
    this.#decoderVersion = version;
    return { structures, version };
  }

  /** cbor-x's `saveStructures`: true when saved, false when the table changed meanwhile. */
  #save(shared: Shared): boolean {
    const structures = shared.structures.map((keys) => keys.slice());
    const bytes = tableEncoder.encode(structures);
    const lineage = this.#store.saveRecordTable(this.#encoderLineage, this.#encoderVersion, bytes);
    if (lineage === -2) this.#deferred = true; // inside update: learn the shape after it
    if (lineage < 0) throw new NoRoom();
    if (lineage === 0) return false; // cbor-x reads the table again and encodes again
    this.#encoderVersion = this.#encoderLineage === 0 ? 1 : this.#encoderVersion + 1;
    this.#encoderLineage = lineage;
    return true;
  }
}
