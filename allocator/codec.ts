/**
 * Value encoding for the store: what a value becomes in the segment, and back.
 *
 * Six kinds, chosen by {@linkcode encodeValue} and stored beside the bytes:
 *
 * | kind                       | values                       | bytes                              |
 * | -------------------------- | ---------------------------- | ---------------------------------- |
 * | {@linkcode KIND_STRING}    | strings                      | UTF-8                              |
 * | {@linkcode KIND_BYTES}     | `Uint8Array` (Buffer)        | the bytes themselves               |
 * | {@linkcode KIND_NUMBER}    | numbers                      | float64, little-endian             |
 * | {@linkcode KIND_RECORDS}   | objects and arrays JSON keeps | CBOR records over the store's     |
 * |                            | (given the store's records)  | table of structures (records.ts)   |
 * | {@linkcode KIND_JSON}      | the same, otherwise           | JSON text, UTF-8                  |
 * | {@linkcode KIND_CBOR}      | everything else              | CBOR (RFC 8949), written by cbor-x |
 *
 * Records or JSON text are chosen for plain objects and arrays whose JSON text reads back
 * exactly: only strings, finite numbers other than `-0`, booleans, `null`, arrays and plain
 * objects with a prototype, no cycles (the walk that checks every value tells). Records decode
 * fastest on every runtime (allocator/records.ts has the figures) but need the store's table;
 * JSON text is what `readJson` sends on without a decode. Measured on a 1 KiB object, a JSON
 * decode takes 1.8 µs on Bun where plain cbor-x takes 6.7 µs, and about as long as cbor-x on Deno
 * and Node; an encode takes 40% of cbor-x's on all three. The text is about 20% longer than the
 * CBOR.
 *
 * The CBOR of {@linkcode KIND_CBOR} is self-contained: no record structures, no shared tables,
 * nothing that lives in one encoder instance, so bytes written by one process (Deno or Bun)
 * decode the same in every other, and the same value always gives the same bytes.
 *
 * ## What round-trips
 *
 * A decoded value is `assert.deepStrictEqual` to the stored one, with the same types:
 * numbers (`-0`, `NaN`, `±Infinity` included), booleans, `null`, strings, bigints of any size,
 * arrays, plain objects (own enumerable string keys, any key including `"__proto__"`, and
 * objects without a prototype come back without one), `Map` (any keys), `Set`, `Date` (invalid
 * ones too), `RegExp` (source and flags; `lastIndex` comes back 0), `Uint8Array` and every other
 * typed array (`Uint8ClampedArray`, `Int8Array` ... `Float64Array`, `BigInt64Array`,
 * `BigUint64Array`), and `undefined` inside a container (`{ a: undefined }`, `[undefined]`).
 * A `Buffer`, or any other `Uint8Array` subclass, comes back as a plain `Uint8Array`.
 *
 * Like `structuredClone`, only own enumerable string-keyed properties of plain objects are kept
 * (symbol keys are skipped), and the extra properties of arrays, Maps, Dates... are not.
 *
 * Cycles are kept when every object a cycle returns to is a plain object or an array; the value
 * is then written with cbor-x's structured-clone references, so inside it every repeated object
 * also keeps its identity. In a value without cycles, an object reached twice is written twice
 * and comes back as two equal copies.
 *
 * ## What is refused
 *
 * {@linkcode encodeValue} throws a `TypeError` naming the value (and, inside a container, its
 * path) instead of storing something that would come back different: `undefined` on its own
 * (a read of a missing name returns `undefined`), functions, symbols, strings with a lone
 * surrogate (UTF-8 cannot hold one: the encoder would write U+FFFD), holes in sparse arrays,
 * instances of classes (they would come back as plain objects), `Error`s (the type, stack and
 * cause would be lost), `ArrayBuffer`, `DataView`, `WeakMap`, `Promise`..., and a cycle that
 * returns to a `Map`, a `Set` or an object without a prototype (cbor-x cannot rebuild those). A
 * value nested more than {@linkcode MAX_DEPTH} levels deep is a `RangeError`: the limit keeps
 * every stored value decodable within the call stack of every runtime.
 *
 * ## Escapes
 *
 * A few values cbor-x alone would not bring back exactly: a key `"__proto__"` (its decoder
 * renames it `"__proto_"`), objects without a prototype or with an own `constructor` key (its
 * encoder takes them for class instances), strings that start with U+FEFF (its JavaScript
 * decoder drops a leading byte order mark, its native one does not), and dates more than 2^51 ms
 * from 1970 (seconds in a float64 lose the millisecond). The walk that checks every value
 * notices them; only then is the value copied with those parts replaced by private CBOR tags,
 * the whole inside one more private tag that tells the decoder to undo them. Other values pay
 * for the walk only.
 *
 * @module
 */
// The subpaths that read no environment variables: cbor-x's main entry reads some at import (to
// load its optional native string extractor), which Deno refuses without --allow-env. The
// interface layer loads that entry where it is allowed; it speeds up this same decoder.
import { Encoder, type Options } from "cbor-x/encode";
import { Decoder, Tag } from "cbor-x/decode";
import type { Records } from "./records.ts";

/**
 * The kind of a string value: the bytes are its UTF-8 encoding.
 *
 * @example A string is stored as UTF-8
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, KIND_STRING } from "./codec.ts";
 *
 * const { kind, bytes } = encodeValue("é");
 * assert.equal(kind, KIND_STRING);
 * assert.deepStrictEqual([...bytes], [0xc3, 0xa9]);
 * ```
 */
export const KIND_STRING = 1;
/**
 * The kind of a `Uint8Array` value (a `Buffer` too): the bytes are its bytes, read back as a
 * new plain `Uint8Array`.
 *
 * @example Bytes are stored as they are
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, KIND_BYTES } from "./codec.ts";
 *
 * const { kind, bytes } = encodeValue(new Uint8Array([1, 2]));
 * assert.equal(kind, KIND_BYTES);
 * assert.deepStrictEqual([...bytes], [1, 2]);
 * ```
 */
export const KIND_BYTES = 2;
/**
 * The kind of every other value: the bytes are CBOR written by cbor-x.
 *
 * @example A Set is stored as CBOR
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, KIND_CBOR } from "./codec.ts";
 *
 * const { kind, bytes } = encodeValue(new Set([1]));
 * assert.equal(kind, KIND_CBOR);
 * assert.deepStrictEqual([...bytes], [0xd9, 0x01, 0x02, 0x81, 0x01]); // tag 258, [1]
 * ```
 */
export const KIND_CBOR = 3;
/**
 * The kind of a number value: the bytes are its IEEE 754 float64, little-endian (8 bytes), so
 * that `increment` adds to it in place of a decode and an encode. Every number, `-0` and `NaN`
 * included, reads back exactly.
 *
 * @example A number is stored as its 8 bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue, KIND_NUMBER } from "./codec.ts";
 *
 * const { kind, bytes } = encodeValue(1.5);
 * assert.equal(kind, KIND_NUMBER);
 * assert.equal(bytes.length, 8);
 * assert.equal(decodeValue(kind, bytes), 1.5);
 * ```
 */
export const KIND_NUMBER = 4;
/**
 * The kind of a plain object or array that JSON keeps exactly: the bytes are its JSON text in
 * UTF-8. Stores of layout version 5 on; {@linkcode encodeValue} writes CBOR instead when told
 * the store is older.
 *
 * @example A plain object is stored as JSON text
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue, KIND_CBOR, KIND_JSON } from "./codec.ts";
 *
 * const { kind, bytes } = encodeValue({ user: "ada", visits: [1, 2] });
 * assert.equal(kind, KIND_JSON);
 * assert.equal(new TextDecoder().decode(bytes), '{"user":"ada","visits":[1,2]}');
 * assert.deepEqual(decodeValue(kind, bytes), { user: "ada", visits: [1, 2] });
 * assert.equal(encodeValue({ seen: new Date(0) }).kind, KIND_CBOR); // JSON has no dates
 * ```
 */
export const KIND_JSON = 5;

/**
 * The kind of a plain object or array that JSON keeps exactly, in a store of layout version 6
 * on: the bytes are CBOR records over the store's shared table of structures (see
 * allocator/records.ts), which only that store's {@linkcode Records} decodes. Objects decode
 * two to three times faster than from JSON text on Deno and Node, and take 40% less room.
 *
 * @example A plain object is stored as records where the store has a table
 * ```ts ignore
 * const { kind } = encodeValue({ user: "ada" }, Infinity, true, records); // KIND_RECORDS
 * ```
 */
export const KIND_RECORDS = 6;

/** The name of each kind, as `info()` and the command report it. */
export type KindName = "string" | "bytes" | "number" | "json" | "cbor" | "records";

/**
 * The names of the kinds, by kind.
 *
 * @example Name a stored value's kind
 * ```ts
 * import { encodeValue, KIND_NAMES } from "./codec.ts";
 *
 * console.log(KIND_NAMES[encodeValue({ a: 1 }).kind]); // json
 * ```
 */
export const KIND_NAMES: Readonly<Record<number, KindName>> = {
  [KIND_STRING]: "string",
  [KIND_BYTES]: "bytes",
  [KIND_CBOR]: "cbor",
  [KIND_JSON]: "json",
  [KIND_NUMBER]: "number",
  [KIND_RECORDS]: "records",
};

/**
 * The deepest nesting {@linkcode encodeValue} accepts: a value inside more objects (arrays,
 * plain objects, Maps, Sets, dates, typed arrays...) than this is refused with a `RangeError`.
 * cbor-x encodes and decodes recursively; Deno's default stack decodes about 850 nested Sets,
 * so this leaves room for the escapes (two CBOR levels per escaped object) and for callers that
 * are already deep in their own stack.
 *
 * @example Nesting past the limit is refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue, MAX_DEPTH } from "./codec.ts";
 *
 * let value: unknown = 1;
 * for (let i = 0; i < MAX_DEPTH; i++) value = [value];
 * encodeValue(value);
 * assert.throws(() => encodeValue([value]), RangeError);
 * ```
 */
export const MAX_DEPTH = 256;

/** What {@linkcode encodeValue} returns. */
export interface EncodedValue {
  /** One of {@linkcode KIND_STRING}, {@linkcode KIND_BYTES}, {@linkcode KIND_CBOR}, {@linkcode KIND_NUMBER}, {@linkcode KIND_JSON}. */
  kind: number;
  /**
   * The bytes to store: the caller's own `Uint8Array` (for {@linkcode KIND_BYTES}), or a view
   * into a buffer the encoder writes again on a later call. Copy them before the next call.
   */
  bytes: Uint8Array;
}

// The private CBOR tags of the escapes (see the module documentation). Part of the stored
// format: never renumber them. cbor-x leaves tags past 40500 to applications and gives none of
// these a meaning, so its decoder returns them as Tag objects for decodeCbor to undo.
const TAG_ESCAPED = 40_560; // wraps a value with escapes: only this, at the top, makes us look
const TAG_OBJECT = 40_561; // a plain object as [key, value, key, value...]
const TAG_NULL_OBJECT = 40_562; // an object without a prototype, the same way
const TAG_TEXT = 40_563; // a string that starts with U+FEFF, as its UTF-8 bytes
const TAG_DATE = 40_564; // a Date far from 1970, as its time in milliseconds

/** cbor-x's options, with two it reads but does not declare in its types. */
export interface CborOptions extends Options {
  useTag259ForMaps?: boolean;
  int64AsNumber?: boolean;
}

/** The options of every encoder and decoder of the codec (records.ts turns records on). */
export const CBOR_OPTIONS: CborOptions = {
  // Records keep their key lists in the encoder instance: another process could not decode them.
  useRecords: false,
  // CBOR maps are plain objects, and JS Maps carry tag 259 so they come back as Maps.
  mapsAsObjects: true,
  useTag259ForMaps: true,
  // Object headers sized to the key count: the shortest form, and correct past 65,535 keys (the
  // fixed 16-bit header cbor-x writes otherwise wraps around).
  variableMapSize: true,
  // Uint8Array as a plain byte string. Left unset, cbor-x tags it only where `Buffer` exists.
  tagUint8Array: false,
  // Bigints past 64 bits as tags 2/3 (exact), 64-bit integers read as bigints: cbor-x writes
  // numbers as 32-bit integers or float64, never 64-bit integers, so only bigints use them.
  largeBigIntToFloat: false,
  int64AsNumber: false,
  // Dates keep their milliseconds; numbers stay float64; no toJSON, no string tables.
  useTimestamp32: false,
  useFloat32: 0,
  useToJSON: false,
  pack: false,
  bundleStrings: false,
  sequential: false,
  useSelfDescribedHeader: false,
};

// The walk's findings, which pick the encoder.
const NEG_ZERO = 1; // a -0: cbor-x writes -0 as the integer 0 unless every number is a float
const CYCLIC = 2; // a cycle: write with structured-clone references
const ESCAPE = 4; // something that needs an escape
const NOT_JSON = 8; // something JSON text would not bring back exactly

/** One encoder per combination of NEG_ZERO and CYCLIC, created once. */
const ENCODERS: readonly Encoder[] = [
  new Encoder(CBOR_OPTIONS),
  new Encoder({ ...CBOR_OPTIONS, alwaysUseFloat: true }),
  new Encoder({ ...CBOR_OPTIONS, structuredClone: true }),
  new Encoder({ ...CBOR_OPTIONS, structuredClone: true, alwaysUseFloat: true }),
];
// copyBuffers: byte strings and typed arrays get their own memory, never a view of the segment.
const decoder = new Decoder({ ...CBOR_OPTIONS, copyBuffers: true });
const textEncoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content. Not fatal: Deno's fatal decoder is 2.5 to 10 times
// slower, so a result with U+FFFD is checked again with the strict one (see decodeValue).
const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const strictTextDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Strings are encoded into this buffer and handed out as a view of it: allocating a new
// Uint8Array per call (TextEncoder.encode) costs Deno about 170 ns more for 100 bytes.
const scratch = new Uint8Array(64 * 1024);
const SCRATCH_CHARS = scratch.length / 3; // UTF-8 needs at most 3 bytes per UTF-16 unit

const BOM = 0xfeff;
const OBJECT_PROTOTYPE: object = Object.prototype;
const TYPED_ARRAY_PROTOTYPES: ReadonlySet<unknown> = new Set([
  Int8Array.prototype,
  Uint8ClampedArray.prototype,
  Int16Array.prototype,
  Uint16Array.prototype,
  Int32Array.prototype,
  Uint32Array.prototype,
  Float32Array.prototype,
  Float64Array.prototype,
  BigInt64Array.prototype,
  BigUint64Array.prototype,
]);

/**
 * Encodes a value for storage. Pure: it reads the value (getters included) and writes nothing.
 *
 * @param value A string, a `Uint8Array`, or anything else listed in the module documentation.
 * @param maxBytes The most bytes the value may take (the store's size); past it, a value is
 *   refused before it is written out. A top-level string or `Uint8Array` is not checked here.
 * @param json Whether {@linkcode KIND_JSON} may be chosen (default `true`); `false` for a store
 *   whose layout predates it.
 * @param records The store's records codec: given, plain objects and arrays that JSON would
 *   keep exactly are written as {@linkcode KIND_RECORDS} instead of JSON text.
 * @returns The kind and the bytes to store; copy the bytes before the next call.
 * @throws {TypeError} When the value (or a value inside it, named by its path) would not come
 *   back the same: `undefined` on its own, a function, a symbol, a string with a lone surrogate,
 *   a hole in a sparse array, a class instance, an `Error`, an `ArrayBuffer`, a cycle through a
 *   `Map` or `Set`...
 * @throws {RangeError} When the value is nested more than {@linkcode MAX_DEPTH} levels deep, or
 *   would take more than `maxBytes` (an object reached by several paths counts every time).
 *
 * @example Encode and decode a few kinds of value
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue, KIND_CBOR, KIND_STRING } from "./codec.ts";
 *
 * const text = encodeValue("héllo");
 * assert.equal(text.kind, KIND_STRING);
 * assert.equal(decodeValue(text.kind, text.bytes.slice()), "héllo");
 *
 * const session = { user: 42n, roles: new Set(["admin"]), seen: new Map([[1, new Date(0)]]) };
 * const encoded = encodeValue(session);
 * assert.equal(encoded.kind, KIND_CBOR);
 * assert.deepStrictEqual(decodeValue(encoded.kind, encoded.bytes.slice()), session);
 * ```
 *
 * @example Values that would not come back the same are refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeValue } from "./codec.ts";
 *
 * assert.throws(() => encodeValue({ a: { b: [1, 2, Symbol("x")] } }), {
 *   name: "TypeError",
 *   message: 'Cannot store the value at "a.b[2]": it is a symbol',
 * });
 * ```
 */
export function encodeValue(
  value: unknown,
  maxBytes: number = Infinity,
  json: boolean = true,
  records?: Records,
): EncodedValue {
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw toError(LONE_SURROGATE, []);
    if (value.length > SCRATCH_CHARS) {
      return { kind: KIND_STRING, bytes: textEncoder.encode(value) };
    }
    const { written } = textEncoder.encodeInto(value, scratch);
    return { kind: KIND_STRING, bytes: scratch.subarray(0, written) };
  }
  if (value instanceof Uint8Array) {
    // A Buffer's slice() is a view, not a copy: hand out a plain Uint8Array over its bytes.
    return {
      kind: KIND_BYTES,
      bytes: value.constructor === Uint8Array
        ? value
        : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
    };
  }
  if (typeof value === "number") {
    numberScratch[0] = value;
    return { kind: KIND_NUMBER, bytes: numberBytes };
  }
  if (value === undefined) throw toError(UNDEFINED, []);
  return encodeStructured(value, maxBytes, json, records);
}

/**
 * Decodes bytes stored with {@linkcode encodeValue}. The result never shares memory with
 * `bytes`, so `bytes` may be a view of the shared segment.
 *
 * @param kind The kind stored with the bytes.
 * @param bytes The stored bytes.
 * @returns The value: a string, a new `Uint8Array` over its own `ArrayBuffer`, or the decoded CBOR.
 * @throws {RangeError} When `kind` is not one of the kinds.
 * @throws {TypeError} When the bytes are not valid for their kind (UTF-8 or CBOR that does not
 *   decode): the segment is corrupt. The cbor-x error is the `cause`.
 *
 * @example Bytes come back as a copy
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, encodeValue, KIND_BYTES } from "./codec.ts";
 *
 * const stored = new Uint8Array([1, 2, 3]);
 * const { kind, bytes } = encodeValue(stored);
 * assert.equal(kind, KIND_BYTES);
 * const read = decodeValue(kind, bytes) as Uint8Array;
 * assert.deepStrictEqual(read, stored);
 * assert.notEqual(read.buffer, stored.buffer);
 * ```
 *
 * @example A corrupt value is a clear error
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeValue, KIND_CBOR } from "./codec.ts";
 *
 * assert.throws(() => decodeValue(KIND_CBOR, new Uint8Array([0x83, 1])), TypeError);
 * assert.throws(() => decodeValue(9, new Uint8Array()), RangeError);
 * ```
 */
export function decodeValue(kind: number, bytes: Uint8Array, records?: Records): unknown {
  switch (kind) {
    case KIND_STRING: {
      const text = textDecoder.decode(bytes);
      // encodeValue writes valid UTF-8 only; U+FFFD is either content or corruption.
      if (text.includes("\uFFFD")) {
        try {
          strictTextDecoder.decode(bytes);
        } catch (error) {
          throw new TypeError("Cannot decode the stored string: its bytes are not valid UTF-8", {
            cause: error,
          });
        }
      }
      return text;
    }
    case KIND_BYTES:
      // A Buffer's slice() is a view; new Uint8Array(view) always copies into a new ArrayBuffer.
      return bytes.constructor === Uint8Array ? bytes.slice() : new Uint8Array(bytes);
    case KIND_CBOR:
      return decodeCbor(bytes);
    case KIND_NUMBER:
      return decodeNumber(bytes, 0, bytes.length);
    case KIND_JSON:
      return decodeJson(textDecoder.decode(bytes));
    case KIND_RECORDS:
      if (records === undefined) {
        throw new TypeError("Cannot decode records without the table of the store they are in");
      }
      return records.decode(bytes);
    default:
      throw new RangeError(
        `Cannot decode a value of kind ${kind}: the kinds are ${KIND_STRING} (string), ` +
          `${KIND_BYTES} (bytes), ${KIND_CBOR} (CBOR), ${KIND_NUMBER} (number), ` +
          `${KIND_JSON} (JSON) and ${KIND_RECORDS} (records)`,
      );
  }
}

/**
 * The value of stored JSON text (kind {@linkcode KIND_JSON}), already decoded from UTF-8.
 *
 * @param text The JSON text.
 * @returns The value.
 * @throws {TypeError} When the text is not JSON: the segment is corrupt.
 *
 * @example Decode JSON text read from a store
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJson } from "./codec.ts";
 *
 * assert.deepEqual(decodeJson('{"a":[1,true,null]}'), { a: [1, true, null] });
 * assert.throws(() => decodeJson('{"a":'), TypeError);
 * ```
 */
export function decodeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TypeError("Cannot decode the stored JSON text: it is not JSON", { cause: error });
  }
}

/** The float64 that numbers are encoded into and decoded from, and its bytes. */
const numberScratch = new Float64Array(1);
const numberBytes = new Uint8Array(numberScratch.buffer);

/**
 * The number stored as `bytes[start..end)` (kind {@linkcode KIND_NUMBER}). The bytes are copied
 * first, so they may be a view of the shared segment.
 *
 * @param bytes Bytes holding the value.
 * @param start Its first byte.
 * @param end The byte after its last.
 * @returns The number.
 * @throws {TypeError} When the value is not 8 bytes long.
 *
 * @example Decode a number in the middle of a buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeNumber } from "./codec.ts";
 *
 * const bytes = new Uint8Array(10);
 * new DataView(bytes.buffer).setFloat64(1, -0.5, true);
 * assert.equal(decodeNumber(bytes, 1, 9), -0.5);
 * ```
 */
export function decodeNumber(bytes: Uint8Array, start: number, end: number): number {
  if (end - start !== 8) {
    throw new TypeError(`Cannot decode a stored number of ${end - start} bytes: it must have 8`);
  }
  numberBytes.set(bytes.subarray(start, end));
  return numberScratch[0]!;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** An object's encoding: JSON text where it keeps the value exactly (and may), else CBOR. */
function encodeStructured(
  value: unknown,
  maxBytes: number,
  json: boolean,
  records: Records | undefined,
): EncodedValue {
  const walk: Walk = { flags: 0, ancestors: [], path: null, budget: maxBytes };
  try {
    visit(value, 0, walk);
  } catch (error) {
    if (error instanceof Rejection) {
      // A range problem has no path to find: do not walk a value that large a second time.
      throw error.problem.range ? toError(error.problem, []) : explain(value, error, maxBytes);
    }
    throw error;
  }
  // Objects and arrays only: true, false and null take one byte of CBOR, four or five of JSON.
  const plain = typeof value === "object" && value !== null;
  if (json && plain && (walk.flags & (NEG_ZERO | CYCLIC | ESCAPE | NOT_JSON)) === 0) {
    const bytes = records?.encode(value); // undefined: no room for the table
    if (bytes !== undefined) return { kind: KIND_RECORDS, bytes };
    const text = JSON.stringify(value);
    if (text.length > SCRATCH_CHARS) return { kind: KIND_JSON, bytes: textEncoder.encode(text) };
    const { written } = textEncoder.encodeInto(text, scratch);
    return { kind: KIND_JSON, bytes: scratch.subarray(0, written) };
  }
  const input = walk.flags & ESCAPE ? new Tag(escapeValue(value, new Map()), TAG_ESCAPED) : value;
  let bytes: Uint8Array;
  try {
    bytes = ENCODERS[walk.flags & (NEG_ZERO | CYCLIC)]!.encode(input);
  } catch (error) {
    // Not expected after the walk; a buffer past cbor-x's size limit, or an exhausted stack.
    const message = error instanceof Error ? error.message : String(error);
    throw new (error instanceof RangeError ? RangeError : TypeError)(
      `Cannot store the value: cbor-x failed to encode it (${message})`,
      { cause: error },
    );
  }
  // cbor-x returns a Buffer (its slice() is a view); hand out a plain Uint8Array.
  return {
    kind: KIND_CBOR,
    bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

/** The state of one walk over a value. */
interface Walk {
  /** NEG_ZERO | CYCLIC | ESCAPE | NOT_JSON, as found so far. */
  flags: number;
  /** ancestors[d] is the object at depth d on the current path (entries past it are stale). */
  ancestors: object[];
  /** The path to the current value, kept only when explaining a rejection. */
  path: string[] | null;
  /**
   * What is left of the bytes the value may take. Every value visited takes at least one byte
   * and every UTF-16 unit of a string at least one more, so a value that shares objects (each
   * written out again wherever it is reached) is refused after as many steps as the store has
   * bytes, rather than walked, and written, 2^depth times.
   */
  budget: number;
}

/** Why a value cannot be stored. */
interface Problem {
  /** The value, as a noun: "a function". */
  noun: string;
  /** Why, or what to do instead. */
  hint: string;
  /** A RangeError rather than a TypeError. */
  range?: boolean;
}

/** Thrown inside the walk; {@linkcode explain} turns it into the error the caller sees. */
class Rejection {
  readonly problem: Problem;
  constructor(problem: Problem) {
    this.problem = problem;
  }
}

const DEFAULT_HINT = "memalloc stores strings, bytes and values cbor-x can encode";
const KEEPS_TYPE = "memalloc keeps the type of plain objects, arrays, Map, Set, Date, RegExp " +
  "and typed arrays only";
const UNDEFINED: Problem = {
  noun: "undefined",
  hint: "reading a name that is not stored returns undefined",
};
const FUNCTION: Problem = { noun: "a function", hint: DEFAULT_HINT };
const SYMBOL: Problem = { noun: "a symbol", hint: DEFAULT_HINT };
const SURROGATE_HINT = "UTF-8 cannot encode it (String.prototype.toWellFormed() replaces them)";
const LONE_SURROGATE: Problem = { noun: "a string with a lone surrogate", hint: SURROGATE_HINT };
const LONE_SURROGATE_KEY: Problem = {
  noun: "an object with a key that has a lone surrogate",
  hint: SURROGATE_HINT,
};
const HOLE: Problem = {
  noun: "a hole in a sparse array",
  hint: "fill it with undefined or null",
};
const TOO_LARGE: Problem = {
  noun: "a value this large",
  hint: "written out, it does not fit in the store even when empty",
  range: true,
};
const TOO_DEEP: Problem = {
  noun: `a value nested more than ${MAX_DEPTH} levels deep`,
  hint: "it might not decode within the call stack of another process",
  range: true,
};

function visit(value: unknown, depth: number, walk: Walk): void {
  if (--walk.budget < 0) throw new Rejection(TOO_LARGE);
  switch (typeof value) {
    case "string":
      if ((walk.budget -= value.length) < 0) throw new Rejection(TOO_LARGE);
      if (!value.isWellFormed()) throw new Rejection(LONE_SURROGATE);
      if (value.charCodeAt(0) === BOM) walk.flags |= ESCAPE;
      return;
    case "number":
      if (value === 0 && 1 / value < 0) walk.flags |= NEG_ZERO;
      else if (value - value !== 0) walk.flags |= NOT_JSON; // NaN, Infinity: null in JSON
      return;
    case "object":
      if (value !== null) visitObject(value, depth, walk);
      return;
    case "function":
      throw new Rejection(FUNCTION);
    case "symbol":
      throw new Rejection(SYMBOL);
    case "boolean":
      return;
    default: // bigint, undefined (inside a container: CBOR has undefined, JSON has neither)
      walk.flags |= NOT_JSON;
      return;
  }
}

function visitObject(value: object, depth: number, walk: Walk): void {
  const ancestors = walk.ancestors;
  for (let i = 0; i < depth; i++) {
    if (ancestors[i] === value) {
      if (!canCloseCycle(value)) throw new Rejection(cycleProblem(value));
      walk.flags |= CYCLIC;
      return;
    }
  }
  if (depth >= MAX_DEPTH) throw new Rejection(TOO_DEEP);
  ancestors[depth] = value;
  const path = walk.path;
  const proto: unknown = Object.getPrototypeOf(value);

  if (proto === OBJECT_PROTOTYPE || proto === null) {
    // An own "constructor" key sends cbor-x down its class-instance path; escape those too.
    if (proto === null || (value as { constructor?: unknown }).constructor !== Object) {
      walk.flags |= ESCAPE;
    }
    const record = value as Record<string, unknown>;
    // for-in rather than Object.keys (what cbor-x writes): V8's enum cache makes the walk 15%
    // faster. It also visits enumerable properties inherited from a polluted Object.prototype;
    // at worst that refuses a value cbor-x would have written without them.
    for (const key in record) {
      if (!key.isWellFormed()) throw new Rejection(LONE_SURROGATE_KEY);
      if (key === "__proto__" || key.charCodeAt(0) === BOM) walk.flags |= ESCAPE;
      if (path) path.push(propertySegment(key));
      visit(record[key], depth + 1, walk);
      if (path) path.pop();
    }
    return;
  }
  if (proto === Array.prototype) {
    const array = value as unknown[];
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      if (path) path.push(`[${i}]`);
      if (item === undefined && !(i in array)) throw new Rejection(HOLE);
      visit(item, depth + 1, walk);
      if (path) path.pop();
    }
    return;
  }
  walk.flags |= NOT_JSON; // past plain objects and arrays: Map, Set, Date, RegExp, typed arrays
  if (proto === Map.prototype) {
    let i = 0;
    for (const [key, item] of value as Map<unknown, unknown>) {
      if (path) path.push(`.keys()[${i}]`);
      visit(key, depth + 1, walk);
      if (path) path[path.length - 1] = mapValueSegment(key, i);
      visit(item, depth + 1, walk);
      if (path) path.pop();
      i++;
    }
    return;
  }
  if (proto === Set.prototype) {
    let i = 0;
    for (const item of value as Set<unknown>) {
      if (path) path.push(`.values()[${i}]`);
      visit(item, depth + 1, walk);
      if (path) path.pop();
      i++;
    }
    return;
  }
  if (proto === Date.prototype) {
    // cbor-x writes seconds as a float64 and reads Math.round(seconds * 1000): exact up to about
    // 2^51 ms from 1970; further out the millisecond can change.
    const time = (value as Date).getTime();
    if (Math.round((time / 1000) * 1000) !== time && time === time) walk.flags |= ESCAPE;
    return;
  }
  if (
    proto === RegExp.prototype || value instanceof Uint8Array || TYPED_ARRAY_PROTOTYPES.has(proto)
  ) {
    return;
  }
  throw new Rejection(unsupported(value, proto));
}

/** Whether cbor-x's structured-clone references can rebuild a cycle that returns to `value`. */
function canCloseCycle(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) return true;
  // cbor-x rebuilds a cycle with a placeholder {} or []; anything escaped (a tag) breaks it.
  return proto === OBJECT_PROTOTYPE && !isEscapedObject(value as Record<string, unknown>);
}

function cycleProblem(value: object): Problem {
  const proto: unknown = Object.getPrototypeOf(value);
  const what = proto === Map.prototype
    ? "a Map"
    : proto === Set.prototype
    ? "a Set"
    : proto === null
    ? "an object without a prototype"
    : 'an object with a "__proto__", "constructor" or U+FEFF key';
  return {
    noun: `${what} that contains itself`,
    hint: "a cycle can only return to a plain object or an array",
  };
}

function unsupported(value: object, proto: unknown): Problem {
  if (value instanceof ArrayBuffer || isSharedArrayBuffer(value)) {
    return {
      noun: value instanceof ArrayBuffer ? "an ArrayBuffer" : "a SharedArrayBuffer",
      hint: "store a Uint8Array over it instead",
    };
  }
  if (value instanceof DataView) {
    return { noun: "a DataView", hint: "store a Uint8Array over its bytes instead" };
  }
  const name = constructorName(proto);
  if (value instanceof Error) {
    return {
      noun: `${article(name ?? "Error")} ${name ?? "Error"}`,
      hint: "its type, stack and cause would be lost; store its name and message instead",
    };
  }
  if (name === undefined || name === "Object") {
    return { noun: "an object with a custom prototype", hint: KEEPS_TYPE };
  }
  return { noun: `an instance of ${name}`, hint: KEEPS_TYPE };
}

function isSharedArrayBuffer(value: object): boolean {
  return typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer;
}

function constructorName(proto: unknown): string | undefined {
  try {
    const ctor = (proto as { constructor?: unknown } | null)?.constructor;
    return typeof ctor === "function" && ctor.name !== "" ? ctor.name : undefined;
  } catch {
    return undefined;
  }
}

function article(word: string): string {
  return /^[AEIOU]/.test(word) ? "an" : "a";
}

/** Builds the error for a rejection, walking again with a path to say where it is. */
function explain(value: unknown, rejection: Rejection, maxBytes: number): Error {
  const walk: Walk = { flags: 0, ancestors: [], path: [], budget: maxBytes };
  try {
    visit(value, 0, walk);
  } catch (error) {
    if (error instanceof Rejection) return toError(error.problem, walk.path!);
    throw error;
  }
  // The second walk found nothing (a getter that changed its answer): say what, not where.
  return toError(rejection.problem, []);
}

function toError(problem: Problem, path: readonly string[]): Error {
  const message = path.length === 0 || problem.range
    ? `Cannot store ${problem.noun}: ${problem.hint}`
    : `Cannot store the value at "${formatPath(path)}": it is ${problem.noun}` +
      (problem.hint === DEFAULT_HINT ? "" : `; ${problem.hint}`);
  return problem.range ? new RangeError(message) : new TypeError(message);
}

function formatPath(path: readonly string[]): string {
  const joined = path.join("");
  return joined.startsWith(".") ? joined.slice(1) : joined;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function propertySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function mapValueSegment(key: unknown, index: number): string {
  switch (typeof key) {
    case "string":
      return `.get(${JSON.stringify(key)})`;
    case "number":
    case "boolean":
    case "undefined":
      return `.get(${String(key)})`;
    case "bigint":
      return `.get(${key}n)`;
    default:
      return key === null ? ".get(null)" : `.values()[${index}]`;
  }
}

/** Whether a plain object must be written as TAG_OBJECT / TAG_NULL_OBJECT entries. */
function isEscapedObject(record: Record<string, unknown>): boolean {
  if (Object.getPrototypeOf(record) === null || record.constructor !== Object) return true;
  for (const key of Object.keys(record)) {
    if (key === "__proto__" || key.charCodeAt(0) === BOM) return true;
  }
  return false;
}

/**
 * A copy of `value` with the escapes in place, for a value the walk flagged (rare). Containers
 * are copied, leaves shared; `copies` keeps cycles and repeated objects as they were.
 */
function escapeValue(value: unknown, copies: Map<object, unknown>): unknown {
  if (typeof value === "string") {
    return value.charCodeAt(0) === BOM ? new Tag(textEncoder.encode(value), TAG_TEXT) : value;
  }
  if (typeof value !== "object" || value === null) return value;
  const done = copies.get(value);
  if (done !== undefined) return done;
  const proto: unknown = Object.getPrototypeOf(value);

  if (proto === OBJECT_PROTOTYPE || proto === null) {
    const record = value as Record<string, unknown>;
    if (isEscapedObject(record)) {
      const entries: unknown[] = [];
      const tagged = new Tag(entries, proto === null ? TAG_NULL_OBJECT : TAG_OBJECT);
      copies.set(value, tagged);
      for (const key of Object.keys(record)) {
        entries.push(escapeValue(key, copies), escapeValue(record[key], copies));
      }
      return tagged;
    }
    const copy: Record<string, unknown> = {};
    copies.set(value, copy);
    for (const key of Object.keys(record)) copy[key] = escapeValue(record[key], copies);
    return copy;
  }
  if (proto === Array.prototype) {
    const array = value as unknown[];
    const copy: unknown[] = [];
    copies.set(value, copy);
    for (let i = 0; i < array.length; i++) copy.push(escapeValue(array[i], copies));
    return copy;
  }
  if (proto === Map.prototype) {
    const copy = new Map<unknown, unknown>();
    copies.set(value, copy);
    for (const [key, item] of value as Map<unknown, unknown>) {
      copy.set(escapeValue(key, copies), escapeValue(item, copies));
    }
    return copy;
  }
  if (proto === Set.prototype) {
    const copy = new Set<unknown>();
    copies.set(value, copy);
    for (const item of value as Set<unknown>) copy.add(escapeValue(item, copies));
    return copy;
  }
  if (proto === Date.prototype) {
    const time = (value as Date).getTime();
    if (Math.round((time / 1000) * 1000) !== time && time === time) {
      const tagged = new Tag(time, TAG_DATE);
      copies.set(value, tagged);
      return tagged;
    }
  }
  return value; // RegExp, typed arrays, ordinary dates: as they are
}

// ---------------------------------------------------------------------------------------------
// Decoding

function decodeCbor(bytes: Uint8Array): unknown {
  // cbor-x copies byte strings with the source's own slice(): from a Buffer that gives Buffers.
  const source = bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let value: unknown;
  try {
    value = decoder.decode(source);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new TypeError(`Cannot decode the stored value: its CBOR is invalid (${message})`, {
      cause: error,
    });
  }
  if (value instanceof Tag && value.tag === TAG_ESCAPED) {
    return unescapeValue(value.value, new Map());
  }
  return value;
}

function malformed(what: string): TypeError {
  return new TypeError(`Cannot decode the stored value: its CBOR has a malformed ${what}`);
}

/**
 * Undoes {@linkcode escapeValue} on a freshly decoded value, in place (the containers are new).
 * `done` maps every object seen to its result, for cycles and repeated objects.
 */
function unescapeValue(value: unknown, done: Map<object, unknown>): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (done.has(value)) return done.get(value);

  if (value instanceof Tag) {
    const inner: unknown = value.value;
    switch (value.tag) {
      case TAG_TEXT: {
        if (!(inner instanceof Uint8Array)) throw malformed("escaped string");
        let text: string;
        try {
          text = strictTextDecoder.decode(inner);
        } catch {
          throw malformed("escaped string");
        }
        done.set(value, text);
        return text;
      }
      case TAG_DATE: {
        if (typeof inner !== "number") throw malformed("escaped date");
        const date = new Date(inner);
        done.set(value, date);
        return date;
      }
      case TAG_OBJECT:
      case TAG_NULL_OBJECT: {
        if (!Array.isArray(inner) || inner.length % 2 !== 0) throw malformed("escaped object");
        const object: Record<string, unknown> = value.tag === TAG_NULL_OBJECT
          ? Object.create(null)
          : {};
        done.set(value, object);
        for (let i = 0; i < inner.length; i += 2) {
          const key = unescapeValue(inner[i], done);
          if (typeof key !== "string") throw malformed("escaped object key");
          // defineProperty: "__proto__" becomes an own property, not the prototype.
          Object.defineProperty(object, key, {
            value: unescapeValue(inner[i + 1], done),
            writable: true,
            enumerable: true,
            configurable: true,
          });
        }
        return object;
      }
      default:
        throw malformed(`tag ${value.tag}`);
    }
  }

  done.set(value, value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const array = value as unknown[];
    for (let i = 0; i < array.length; i++) array[i] = unescapeValue(array[i], done);
  } else if (proto === OBJECT_PROTOTYPE) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = unescapeValue(record[key], done);
  } else if (proto === Map.prototype) {
    const map = value as Map<unknown, unknown>;
    const entries = [...map];
    map.clear();
    for (const [key, item] of entries) map.set(unescapeValue(key, done), unescapeValue(item, done));
  } else if (proto === Set.prototype) {
    const set = value as Set<unknown>;
    const items = [...set];
    set.clear();
    for (const item of items) set.add(unescapeValue(item, done));
  }
  return value;
}
