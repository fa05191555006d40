// A child process for codec_test.ts, run under the other runtime:
//   decode <kind>:<hex>...  decodes each value, encodes it again, prints <kind>:<hex> per line
//   encode                  prints <kind>:<hex> for each of codecSamples(), one per line
// Imported by codec_test.ts for codecSamples(), so that both sides build the same values.
import { decodeValue, encodeValue, MAX_DEPTH } from "../allocator/codec.ts";

/** Hex of bytes, and back. */
export const toHex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
export const fromHex = (hex: string): Uint8Array =>
  new Uint8Array(hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

/** `<kind>:<hex>` of a value's encoding. */
export const encodeLine = (value: unknown): string => {
  const { kind, bytes } = encodeValue(value);
  return `${kind}:${toHex(bytes)}`;
};

/** Values of every kind the codec stores, built the same way in every process. */
export function codecSamples(): unknown[] {
  const cyclic: Record<string, unknown> = { name: "root", list: [] as unknown[] };
  (cyclic.list as unknown[]).push(cyclic, new Map([["back", cyclic]]));
  const shared = { shared: true };
  cyclic.twice = [shared, shared, -0];

  const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
  let deep: unknown = "bottom";
  for (let i = 0; i < MAX_DEPTH / 2; i++) {
    deep = i % 2 ? new Set([deep]) : Object.assign(Object.create(null), { [`\uFEFF${i}`]: deep });
  }

  return [
    "plain text",
    "\uFEFF" + "a string that starts with a byte order mark and is longer than 64 bytes",
    "",
    "😀 astral",
    new Uint8Array([0, 1, 2, 255]),
    0,
    -0,
    NaN,
    -Infinity,
    2 ** 53,
    -(2 ** 32) - 1,
    1.5e-300,
    [1, -0, 2 ** 40, 0.5],
    true,
    null,
    12345678901234567890123456789n,
    [0n, -1n, 2n ** 64n - 1n, -(2n ** 64n)],
    { a: 1, nested: { b: [1, "two", null, undefined] }, "1": "numeric key", "": "empty key" },
    JSON.parse('{"__proto__": {"polluted": true}, "__proto_": 1}'),
    nullProto,
    { constructor: "not a function" },
    new Map<unknown, unknown>([[1, "one"], ["1", "string one"], [{ k: 1 }, [2]], [null, 3n]]),
    new Set<unknown>([1, "1", { s: 1 }, new Set([2])]),
    new Date(Date.UTC(2024, 1, 29, 12, 30, 45, 678)),
    new Date(-8.64e15),
    new Date(8.64e15 - 1),
    new Date(NaN),
    /a+(b)?/giu,
    new Int8Array([-128, 127]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-32768, 32767]),
    new Uint16Array([0, 65535]),
    new Int32Array([-(2 ** 31), 2 ** 31 - 1]),
    new Uint32Array([0, 2 ** 32 - 1]),
    new Float32Array([1.5, -0, NaN, Infinity]),
    new Float64Array([Math.PI, -0, Number.MIN_VALUE]),
    new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    new BigUint64Array([0n, 2n ** 64n - 1n]),
    { "\uFEFFkey": "\uFEFF".repeat(40), m: new Map([["\uFEFF" + "x".repeat(80), 1]]) },
    // Each alone: cbor-x's JavaScript decoder drops a leading U+FEFF of strings over 64 bytes.
    ["\uFEFF" + "y".repeat(100)],
    new Set(["\uFEFF" + "z".repeat(100)]),
    new Map([["\uFEFF" + "k".repeat(100), 1]]),
    { ["\uFEFF" + "k".repeat(100)]: 1 },
    cyclic,
    deep,
  ];
}

if (import.meta.main) {
  const [command, ...args] = (globalThis as { process?: { argv: string[] } }).process!.argv
    .slice(2);
  if (command === "decode") {
    for (const arg of args) {
      const [kind, hex] = arg.split(":");
      console.log(encodeLine(decodeValue(Number(kind), fromHex(hex!))));
    }
  } else if (command === "encode") {
    for (const value of codecSamples()) console.log(encodeLine(value));
  } else {
    throw new Error(`unknown command ${command}`);
  }
}
