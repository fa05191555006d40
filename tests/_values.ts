// Sample values of every kind the store keeps, shared by the tests and their child processes.

/** Name -> value; each must come back deep-equal, with the same types. */
export function sampleValues(): Record<string, unknown> {
  return {
    "string": "Foobar",
    "string-empty": "",
    "string-unicode": "héllo wörld – 日本語 – 🦕🐰",
    "bytes": new Uint8Array([0, 1, 2, 253, 254, 255]),
    "bytes-empty": new Uint8Array(0),
    "integer": 42,
    "negative": -7,
    "float": 3.141592653589793,
    "big-number": 2 ** 53 - 1,
    "nan": Number.NaN,
    "infinity": -Infinity,
    "true": true,
    "false": false,
    "null": null,
    "array": [1, "two", [3, { four: 4 }], null, true],
    "object": { name: "Ada", visits: 3, tags: ["a", "b"], nested: { deep: { deeper: 1 } } },
    "date": new Date("2026-11-21T08:00:00.000Z"),
    "map": new Map<unknown, unknown>([["a", 1], [2, "b"], ["c", { d: [1, 2] }]]),
    "set": new Set([1, "two", 3]),
    "bigint": 1234567890123456789012345678901234567890n,
    "bigint-negative": -42n,
    "float64array": new Float64Array([1.5, -2.25, Number.MAX_VALUE]),
    "int32array": new Int32Array([1, -2, 2147483647]),
    "uint16array": new Uint16Array([0, 65535]),
    "large-string": "x".repeat(100_000),
  };
}
