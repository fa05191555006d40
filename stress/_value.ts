/**
 * Self-checking values for the stress harness: every value carries the name it was written
 * under, its writer, a sequence number, its payload length and a checksum over all of that, so
 * any reader can tell a whole value from a torn one (two writes mixed), a truncated one, or one
 * that came back under the wrong name, without knowing what was written.
 *
 * Three shapes, so that every storage path of the codec is exercised:
 * - `"string"`: `S|<name>|<writer>|<seq>|<length>|<sum>|<payload>`, stored raw (UTF-8);
 * - `"bytes"`: the same text with the tag `B`, UTF-8 encoded, stored as a `Uint8Array`;
 * - `"cbor"`: a plain object `{ t: "C", name, writer, seq, length, sum, payload }`, stored as
 *   CBOR.
 *
 * The payload is a slice of a fixed pseudo-random text (ASCII with some 2- and 3-byte UTF-8
 * characters), at an offset picked per value, so two values of the same length differ.
 *
 * @module
 */
import { mulberry32 } from "../tests/_random.ts";

/** The shapes a value can take; see the module documentation. */
export type ValueShape = "string" | "bytes" | "cbor";

/** The object form of a `"cbor"` value. */
export interface CborValue {
  t: "C";
  name: string;
  writer: string;
  seq: number;
  length: number;
  sum: number;
  payload: string;
}

/** Longest payload, in UTF-16 code units (up to 3 UTF-8 bytes each). */
export const MAX_PAYLOAD = 16_384;

/** Characters of the payload text: ASCII letters and digits, plus `é` (2 bytes) and `€` (3). */
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éé€";
/** Length of the payload text; a payload is a slice of it. */
const SOURCE_LENGTH = 1 << 17;

/** The payload text, the same in every process (fixed seed); made on first use. */
let source: string | undefined;
function payloadText(): string {
  if (source !== undefined) return source;
  const next = mulberry32(0x5eed);
  const codes = new Uint16Array(SOURCE_LENGTH);
  for (let i = 0; i < SOURCE_LENGTH; i++) {
    codes[i] = ALPHABET.charCodeAt(Math.floor(next() * ALPHABET.length));
  }
  return (source = new TextDecoder("utf-16le").decode(codes));
}

/**
 * FNV-1a over the UTF-16 code units of `text`, continuing from `hash`.
 *
 * @param text The text to hash.
 * @param hash The hash so far (the FNV offset basis to start).
 * @returns The 32-bit hash.
 */
export function fnv1a(text: string, hash = 0x811c9dc5): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function sumOf(
  tag: string,
  name: string,
  writer: string,
  seq: number,
  length: number,
  payload: string,
): number {
  return fnv1a(payload, fnv1a(`${tag}|${name}|${writer}|${seq}|${length}|`));
}

/** The name of pool entry `index`: `n000`, `n001`, ... */
export function poolName(index: number): string {
  return `n${String(index).padStart(3, "0")}`;
}

/**
 * Makes a self-checking value.
 *
 * @param shape How the value is stored.
 * @param name The name it is written under.
 * @param writer Who writes it (no `|`).
 * @param seq The writer's sequence number for this value.
 * @param length Payload length in UTF-16 code units, 0 to {@linkcode MAX_PAYLOAD}.
 * @param offset Where in the payload text the payload starts (any integer; wrapped).
 * @returns The value, ready for `Memalloc.write`.
 */
export function makeValue(
  shape: ValueShape,
  name: string,
  writer: string,
  seq: number,
  length: number,
  offset: number,
): string | Uint8Array | CborValue {
  const start = Math.abs(offset) % (SOURCE_LENGTH - MAX_PAYLOAD);
  const payload = payloadText().slice(start, start + length);
  if (shape === "cbor") {
    const sum = sumOf("C", name, writer, seq, length, payload);
    return { t: "C", name, writer, seq, length, sum, payload };
  }
  const tag = shape === "string" ? "S" : "B";
  const text = `${tag}|${name}|${writer}|${seq}|${length}|${
    sumOf(tag, name, writer, seq, length, payload)
  }|${payload}`;
  return shape === "string" ? text : encoder.encode(text);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Checks a value read under `name`.
 *
 * @param name The name it was read under.
 * @param value What the read returned (not `undefined`).
 * @returns `undefined` when the value is whole and belongs to `name`; otherwise what is wrong.
 */
export function checkValue(name: string, value: unknown): string | undefined {
  if (typeof value === "string") return checkText("S", name, value);
  if (value instanceof Uint8Array) {
    let text: string;
    try {
      text = decoder.decode(value);
    } catch {
      return `bytes value read under ${name} (${value.length} bytes) is not valid UTF-8`;
    }
    return checkText("B", name, text);
  }
  if (typeof value === "object" && value !== null) {
    const v = value as Partial<CborValue>;
    if (
      v.t !== "C" || typeof v.name !== "string" || typeof v.writer !== "string" ||
      typeof v.seq !== "number" || typeof v.length !== "number" || typeof v.sum !== "number" ||
      typeof v.payload !== "string"
    ) {
      return `object value read under ${name} has missing or mistyped fields`;
    }
    return checkFields("C", name, v.name, v.writer, v.seq, v.length, v.sum, v.payload);
  }
  return `value read under ${name} has an unexpected type (${typeof value})`;
}

function checkText(tag: string, name: string, text: string): string | undefined {
  // tag|name|writer|seq|length|sum|payload; the payload has no "|".
  const parts = text.split("|");
  if (parts.length !== 7 || parts[0] !== tag) {
    return `${tag === "S" ? "string" : "bytes"} value read under ${name} is malformed`;
  }
  const [, owner, writer, seq, length, sum, payload] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return checkFields(tag, name, owner, writer, Number(seq), Number(length), Number(sum), payload);
}

function checkFields(
  tag: string,
  name: string,
  owner: string,
  writer: string,
  seq: number,
  length: number,
  sum: number,
  payload: string,
): string | undefined {
  if (owner !== name) return `value read under ${name} was written under ${owner}`;
  if (payload.length !== length) {
    return `value of ${name} by ${writer} #${seq}: payload has ${payload.length} characters, header says ${length}`;
  }
  if (sumOf(tag, owner, writer, seq, length, payload) !== sum) {
    return `value of ${name} by ${writer} #${seq} (${length} characters): checksum mismatch`;
  }
  return undefined;
}

/** A short printable description of a value, for reports. */
export function describe(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = JSON.stringify(value);
  else if (value instanceof Uint8Array) text = `Uint8Array(${value.length})`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > 120 ? `${text.slice(0, 120)}... (${text.length} chars)` : text;
}
