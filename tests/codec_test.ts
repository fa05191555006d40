import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeValue,
  encodeValue,
  KIND_BYTES,
  KIND_CBOR,
  KIND_JSON,
  KIND_NUMBER,
  KIND_STRING,
  MAX_DEPTH,
} from "../allocator/codec.ts";
import { codecSamples, encodeLine, fromHex, toHex } from "./_codec_child.ts";
import { runtime, test } from "./_harness.ts";
import { run, RUNTIMES } from "./_spawn.ts";

/** Copies bytes to an odd offset of a larger buffer, the way the store holds them. */
function stored(bytes: Uint8Array): Uint8Array {
  const segment = new Uint8Array(bytes.byteLength + 16);
  segment.set(bytes, 7);
  return segment.subarray(7, 7 + bytes.byteLength);
}

/** Encodes, copies to a segment-like buffer, decodes. */
function roundTrip(value: unknown, json = true): unknown {
  const { kind, bytes } = encodeValue(value, Infinity, json);
  return decodeValue(kind, stored(bytes));
}

/**
 * Asserts that the value comes back deep-strict-equal, in the encoding encodeValue picks and in
 * CBOR (a store older than JSON text), and returns what came back the first way.
 */
function assertRoundTrips(value: unknown): unknown {
  const back = roundTrip(value);
  assert.deepStrictEqual(back, value);
  assert.deepStrictEqual(roundTrip(value, false), value);
  return back;
}

function cbor(value: unknown): string {
  const { kind, bytes } = encodeValue(value, Infinity, false);
  assert.equal(kind, KIND_CBOR);
  return toHex(bytes);
}

const TOP_HINT = "memalloc stores strings, bytes and values cbor-x can encode";
const KEEPS_TYPE = "memalloc keeps the type of plain objects, arrays, Map, Set, Date, RegExp " +
  "and typed arrays only";

// ---------------------------------------------------------------------------------------------
// Kinds

test("encodeValue stores a string as KIND_STRING UTF-8 and decodeValue reads it back", () => {
  const long = "x".repeat(100_000) + "é".repeat(30_000); // past the encoder's scratch buffer
  for (const text of ["", "a", "héllo wörld", "😀𝄞 astral", "\0nul", "漢".repeat(21_845), long]) {
    const { kind, bytes } = encodeValue(text);
    assert.equal(kind, KIND_STRING);
    assert.deepStrictEqual(bytes, new TextEncoder().encode(text));
    assert.equal(decodeValue(kind, stored(bytes)), text);
  }
});

test("encodeValue keeps a leading U+FEFF of a string", () => {
  for (const text of ["\uFEFF", "\uFEFFa", "\uFEFF\uFEFF" + "x".repeat(200)]) {
    assert.equal(roundTrip(text), text);
    assert.deepStrictEqual(roundTrip([text]), [text]);
    assert.deepStrictEqual(roundTrip({ [text]: text }), { [text]: text });
    assert.deepStrictEqual(roundTrip(new Map([[text, text]])), new Map([[text, text]]));
    assert.deepStrictEqual(roundTrip(new Set([text, "plain"])), new Set([text, "plain"]));
  }
});

test("encodeValue stores a Uint8Array as KIND_BYTES without copying it", () => {
  const value = new Uint8Array([1, 2, 3, 255]);
  const { kind, bytes } = encodeValue(value);
  assert.equal(kind, KIND_BYTES);
  assert.equal(bytes, value);
  assert.deepStrictEqual(encodeValue(new Uint8Array()).bytes, new Uint8Array());
});

test("decodeValue returns KIND_BYTES as a new Uint8Array over its own ArrayBuffer", () => {
  const source = stored(new Uint8Array([9, 8, 7]));
  const read = decodeValue(KIND_BYTES, source) as Uint8Array;
  assert.equal(read.constructor, Uint8Array);
  assert.deepStrictEqual(read, new Uint8Array([9, 8, 7]));
  assert.notEqual(read.buffer, source.buffer);
  assert.equal(read.byteOffset, 0);
  assert.equal(read.buffer.byteLength, 3);
  source[0] = 0;
  assert.equal(read[0], 9);
});

test("encodeValue stores a Buffer as KIND_BYTES and it comes back as a plain Uint8Array", () => {
  const buffer = Buffer.from("buffer bytes");
  const { kind, bytes } = encodeValue(buffer);
  assert.equal(kind, KIND_BYTES);
  assert.equal(bytes.constructor, Uint8Array);
  assert.deepStrictEqual([...bytes], [...buffer]);
  const read = decodeValue(kind, Buffer.from(bytes)) as Uint8Array;
  assert.equal(read.constructor, Uint8Array);
  assert.deepStrictEqual(read, new Uint8Array(buffer));
  const nested = roundTrip({ buffer }) as { buffer: Uint8Array };
  assert.equal(nested.buffer.constructor, Uint8Array);
  assert.deepStrictEqual(nested.buffer, new Uint8Array(buffer));
});

test("encodeValue stores every other value as KIND_CBOR in a plain Uint8Array", () => {
  for (const value of [true, null, new Map(), 1n, [0, -0], { a: undefined }, new Date(0)]) {
    const { kind, bytes } = encodeValue(value);
    assert.equal(kind, KIND_CBOR);
    assert.equal(bytes.constructor, Uint8Array);
  }
  for (const value of [[], {}, [0], { a: [1, "x", true, null] }]) {
    const { kind, bytes } = encodeValue(value, Infinity, false);
    assert.equal(kind, KIND_CBOR, "a store older than JSON text gets CBOR");
    assert.equal(bytes.constructor, Uint8Array);
  }
});

test("encodeValue stores plain objects and arrays that JSON keeps exactly as KIND_JSON text", () => {
  const json = [
    [],
    {},
    [0, 1.5, -2, 1e21, 5e-324, 2 ** 53 + 2],
    { text: 'é\u2028\uFEFF"', nested: [{ a: null, b: false }], "": 1, "10": 2, "2": 3 },
    JSON.parse('{"__proto_":1}'),
  ];
  for (const value of json) {
    const { kind, bytes } = encodeValue(value);
    assert.equal(kind, KIND_JSON, JSON.stringify(value));
    assert.equal(new TextDecoder().decode(bytes), JSON.stringify(value));
    assertRoundTrips(value);
  }
  const shared = { s: 1 };
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const notJson = [
    [NaN],
    [Infinity],
    [-0],
    { big: 1n },
    [undefined],
    { at: new Date(0) },
    { m: new Map() },
    [new Set([1])],
    [/x/g],
    [new Uint8Array(1)],
    Object.create(null),
    JSON.parse('{"__proto__":1}'),
    { constructor: "x" },
    cyclic,
  ];
  for (const value of notJson) assert.equal(encodeValue(value).kind, KIND_CBOR);
  // Shared (not cyclic) parts are fine: JSON writes them twice, as CBOR does.
  const twice = [shared, shared];
  assert.equal(encodeValue(twice).kind, KIND_JSON);
  assert.deepStrictEqual(roundTrip(twice), [{ s: 1 }, { s: 1 }]);
  assert.throws(() => decodeValue(KIND_JSON, new TextEncoder().encode('{"a":')), {
    name: "TypeError",
    message: "Cannot decode the stored JSON text: it is not JSON",
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips

test("encodeValue round-trips numbers, -0, NaN and infinities exactly", () => {
  const numbers = [
    0,
    -0,
    1,
    -1,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31),
    -(2 ** 31) - 1,
    2 ** 32 - 1,
    2 ** 32,
    -(2 ** 32),
    -(2 ** 32) - 1,
    2 ** 53,
    -(2 ** 53),
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    Number.EPSILON,
    0.1,
    -1.5e-300,
    1e300,
    NaN,
    Infinity,
    -Infinity,
  ];
  for (const number of numbers) {
    const back = roundTrip(number);
    assert.ok(Object.is(back, number), `${number} came back as ${back}`);
  }
  assertRoundTrips(numbers);
  assertRoundTrips({ numbers, nested: [[-0]] });
  assert.ok(Object.is((roundTrip([1, -0]) as number[])[1], -0));
});

test("encodeValue writes integers compactly unless the value holds a -0", () => {
  assert.equal(cbor([1, 2 ** 32 - 1]), "82011affffffff");
  assert.equal(cbor([1, -0]), "82fb3ff0000000000000fb8000000000000000");
});

test("encodeValue round-trips booleans and null", () => {
  for (const value of [true, false, null]) assert.equal(roundTrip(value), value);
  assertRoundTrips([true, false, null, { t: true, n: null }]);
});

test("encodeValue round-trips bigints of every size as bigints", () => {
  const bigints = [
    0n,
    1n,
    -1n,
    255n,
    2n ** 32n,
    2n ** 53n + 1n,
    2n ** 63n,
    2n ** 64n - 1n,
    2n ** 64n,
    -(2n ** 64n),
    -(2n ** 64n) - 1n,
    10n ** 100n,
    -(10n ** 100n),
  ];
  for (const bigint of bigints) assert.equal(roundTrip(bigint), bigint);
  assertRoundTrips(bigints);
  assert.equal(typeof roundTrip(5n), "bigint");
  assert.equal(typeof roundTrip(2 ** 53), "number");
  assert.equal(typeof roundTrip(2 ** 64), "number");
});

test("encodeValue round-trips strings nested in values, unicode and astral included", () => {
  assertRoundTrips(["", "a", "héllo", "😀𝄞", "\u2028", "x".repeat(70_000), { "ключ": "значение" }]);
});

test("encodeValue round-trips nested arrays, and arrays holding undefined", () => {
  assertRoundTrips([]);
  assertRoundTrips([[[]], [1, [2, [3, [4]]]], "mixed", null]);
  assertRoundTrips([undefined, 1, undefined]);
  assertRoundTrips(Array.from({ length: 100_000 }, (_, i) => i));
});

test("encodeValue round-trips plain objects as plain objects", () => {
  const back = assertRoundTrips({ a: 1, b: { c: [1, 2, { d: "e" }] }, f: undefined }) as object;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assertRoundTrips({});
  assertRoundTrips({ "1": 1, "01": 2, "-1": 3, "1.5": 4, "": 5, "with space": 6, "4294967295": 7 });
  assertRoundTrips({ toString: "x", hasOwnProperty: 1, valueOf: null, __proto_: 2 });
});

test("encodeValue round-trips an object with more than 65,535 keys", () => {
  const object: Record<string, number> = {};
  for (let i = 0; i < 70_000; i++) object[`k${i}`] = i;
  assertRoundTrips(object);
});

test("encodeValue round-trips a __proto__ key as an own property without touching prototypes", () => {
  const parsed = JSON.parse('{"__proto__": {"polluted": true}, "__proto_": 1, "a": 2}');
  const back = assertRoundTrips(parsed) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.ok(Object.hasOwn(back, "__proto__"));
  assert.deepStrictEqual(Object.keys(back), ["__proto__", "__proto_", "a"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assertRoundTrips({ nested: [parsed], map: new Map([["k", parsed]]) });
  const primitive = JSON.parse('{"__proto__": 5}');
  assert.equal((roundTrip(primitive) as Record<string, unknown>)["__proto__"], 5);
});

test("encodeValue round-trips an object without a prototype as one", () => {
  const dictionary = Object.create(null) as Record<string, unknown>;
  dictionary["toString"] = "not the method";
  dictionary["constructor"] = 1;
  dictionary.inner = Object.assign(Object.create(null), { a: [1] });
  const back = assertRoundTrips(dictionary) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(back), null);
  assert.equal(Object.getPrototypeOf(back.inner), null);
  assertRoundTrips([Object.create(null)]);
});

test("encodeValue round-trips an object with an own constructor key as a plain object", () => {
  assertRoundTrips({ constructor: "x" });
  // With its own constructor key, cbor-x would treat this as a class instance and iterate it.
  const iterable = { constructor: 1, [Symbol.iterator]: function* () {} };
  assert.deepStrictEqual(roundTrip(iterable), { constructor: 1 });
});

test("encodeValue skips symbol keys and keeps the values of getters, like structuredClone", () => {
  assert.deepStrictEqual(roundTrip({ [Symbol("s")]: 1, a: 2 }), { a: 2 });
  assert.deepStrictEqual(
    roundTrip({
      get a() {
        return 1;
      },
    }),
    { a: 1 },
  );
});

test("encodeValue round-trips a Map with non-string keys as a Map", () => {
  const key = { k: 1 };
  const map = new Map<unknown, unknown>([
    [1, "number"],
    ["1", "string"],
    [1n, "bigint"],
    [true, "boolean"],
    [null, "null"],
    [undefined, "undefined"],
    [key, "object"],
    [[1, 2], "array"],
    [new Date(0), "date"],
    ["nested", new Map([[2, new Map()]])],
    ["object", { inner: new Map([["x", 1]]) }],
  ]);
  const back = assertRoundTrips(map) as Map<unknown, unknown>;
  assert.ok(back instanceof Map);
  assert.deepStrictEqual([...back.keys()].slice(0, 6), [1, "1", 1n, true, null, undefined]);
  assert.ok((back.get("nested") as Map<unknown, unknown>).get(2) instanceof Map);
  const inner = back.get("object") as { inner: unknown };
  assert.equal(Object.getPrototypeOf(inner), Object.prototype);
  assert.ok(inner.inner instanceof Map);
  assertRoundTrips(new Map());
  assertRoundTrips({ map: new Map([["a", 1]]), object: { a: 1 } });
});

test("encodeValue round-trips a Set as a Set", () => {
  const back = assertRoundTrips(new Set<unknown>([1, "1", 1n, null, undefined, { a: 1 }, [2]]));
  assert.ok(back instanceof Set);
  assertRoundTrips(new Set());
  assertRoundTrips({ set: new Set([new Set([1]), new Map([[1, 1]])]) });
});

test("encodeValue round-trips dates to the millisecond, far ones and invalid ones too", () => {
  const times = [
    0,
    1,
    -1,
    999,
    1_700_000_000_000,
    1_700_000_000_123,
    -1_700_000_000_123,
    Date.UTC(1900, 0, 1),
    2 ** 51 + 1,
    8.64e15,
    -8.64e15,
    8.64e15 - 1,
    -8.64e15 + 1,
  ];
  for (const time of times) {
    const back = roundTrip(new Date(time)) as Date;
    assert.ok(back instanceof Date);
    assert.equal(back.getTime(), time);
  }
  for (let i = 0; i < 10_000; i++) {
    const time = Math.round((Math.random() * 2 - 1) * 8.64e15);
    assert.equal((roundTrip([new Date(time)]) as Date[])[0]!.getTime(), time);
  }
  const invalid = roundTrip(new Date(NaN)) as Date;
  assert.ok(invalid instanceof Date);
  assert.ok(Number.isNaN(invalid.getTime()));
  assertRoundTrips({ at: new Date(1_700_000_000_123), dates: [new Date(0), new Date(8.64e15)] });
});

test("encodeValue round-trips every typed array kind with its type and contents", () => {
  const arrays = [
    new Int8Array([-128, 0, 127]),
    new Uint8Array([0, 128, 255]),
    new Uint8ClampedArray([0, 128, 255]),
    new Int16Array([-32768, 0, 32767]),
    new Uint16Array([0, 65535]),
    new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]),
    new Uint32Array([0, 2 ** 32 - 1]),
    new Float32Array([1.5, -0, NaN, Infinity, -3.4e38]),
    new Float64Array([Math.PI, -0, NaN, Number.MIN_VALUE, -Infinity]),
    new BigInt64Array([-(2n ** 63n), 0n, 2n ** 63n - 1n]),
    new BigUint64Array([0n, 2n ** 64n - 1n]),
  ];
  for (const array of arrays) {
    const [back] = assertRoundTrips([array]) as [ArrayLike<unknown>];
    assert.equal(back.constructor, array.constructor);
    for (let i = 0; i < array.length; i++) assert.ok(Object.is(back[i], array[i]));
    assertRoundTrips({ empty: new (array.constructor as new (n: number) => unknown)(0) });
  }
});

test("encodeValue round-trips a typed array that views part of a larger buffer", () => {
  const buffer = new ArrayBuffer(64);
  new Uint8Array(buffer).forEach((_, i, all) => (all[i] = i));
  const views = [
    new Uint8Array(buffer, 3, 5),
    new Int16Array(buffer, 2, 3),
    new Float64Array(buffer, 8, 2),
    new BigUint64Array(buffer, 16, 1),
  ];
  const back = assertRoundTrips(views) as ArrayBufferView[];
  for (const view of back) assert.equal(view.byteOffset, 0);
});

test("decodeValue never returns memory shared with the stored bytes", () => {
  const { kind, bytes } = encodeValue({
    bytes: new Uint8Array([1, 2, 3]),
    floats: new Float64Array([1.5]),
    clamped: new Uint8ClampedArray([4]),
  });
  const source = stored(bytes);
  const back = decodeValue(kind, source) as Record<string, ArrayBufferView>;
  for (const view of Object.values(back)) assert.notEqual(view.buffer, source.buffer);
  source.fill(0);
  assert.deepStrictEqual(back.bytes, new Uint8Array([1, 2, 3]));
  assert.deepStrictEqual(back.floats, new Float64Array([1.5]));
});

test("decodeValue reads bytes handed over as a Buffer into plain Uint8Arrays", () => {
  const { kind, bytes } = encodeValue({ bytes: new Uint8Array([1, 2]) });
  const back = decodeValue(kind, Buffer.from(bytes)) as { bytes: Uint8Array };
  assert.equal(back.bytes.constructor, Uint8Array);
});

test("encodeValue round-trips a RegExp with its source and flags, lastIndex reset", () => {
  for (const regexp of [/a+b/, /x(?<name>y)?/dgimsuy, /[\p{L}]/v, new RegExp("a/b", "g")]) {
    const back = roundTrip(regexp) as RegExp;
    assert.ok(back instanceof RegExp);
    assert.equal(back.source, regexp.source);
    assert.equal(back.flags, regexp.flags);
  }
  const used = /a/g;
  used.exec("aa");
  assert.equal((roundTrip(used) as RegExp).lastIndex, 0);
  assertRoundTrips({ patterns: [/a/i, /b/g] });
});

test("encodeValue round-trips undefined inside objects, arrays, Maps and Sets", () => {
  const back = assertRoundTrips({ a: undefined, list: [undefined], set: new Set([undefined]) });
  assert.ok(Object.hasOwn(back as object, "a"));
  assertRoundTrips(new Map([[undefined, undefined]]));
});

test("encodeValue writes standard CBOR without records, so equal values give equal bytes", () => {
  assert.equal(cbor({ a: 1 }), "a1616101");
  assert.equal(cbor([{ a: 1 }, { a: 1 }]), "82a1616101a1616101");
  assert.equal(cbor(new Map([["a", 1]])), "d90103a1616101");
  assert.equal(cbor(new Set([1])), "d901028101");
  assert.equal(cbor([new Uint8Array([1, 2])]), "81420102");
  const value = { user: { id: 1, name: "a" }, tags: new Set(["x"]), at: new Date(0) };
  const first = cbor(value);
  for (let i = 0; i < 3; i++) assert.equal(cbor(value), first);
});

test("encodeValue does not change the value it encodes", () => {
  const value = Object.freeze({
    a: Object.freeze([1, -0, "\uFEFFx"]),
    p: Object.freeze(JSON.parse('{"__proto__": 1}')),
  });
  const before = JSON.stringify(value);
  assertRoundTrips(value);
  assert.equal(JSON.stringify(value), before);
});

// ---------------------------------------------------------------------------------------------
// Cycles and shared objects

test("encodeValue round-trips an object that contains itself", () => {
  const value: Record<string, unknown> = { name: "root" };
  value.self = value;
  const back = assertRoundTrips(value) as Record<string, unknown>;
  assert.equal(back.self, back);
});

test("encodeValue round-trips cycles through arrays, nested objects and Maps", () => {
  const list: unknown[] = [1];
  list.push(list);
  const back = assertRoundTrips(list) as unknown[];
  assert.equal(back[1], back);

  const a: Record<string, unknown> = { name: "a" };
  const b: Record<string, unknown> = { name: "b", a };
  a.b = b;
  a.viaMap = new Map([["back", a]]);
  a.viaSet = new Set([b]);
  const root = assertRoundTrips({ a, numbers: [-0, 1] }) as {
    a: Record<string, unknown>;
    numbers: number[];
  };
  const backA = root.a;
  const backB = backA.b as Record<string, unknown>;
  assert.equal(backB.a, backA);
  assert.equal((backA.viaMap as Map<string, unknown>).get("back"), backA);
  assert.equal([...(backA.viaSet as Set<unknown>)][0], backB);
  assert.ok(Object.is(root.numbers[0], -0));
});

test("encodeValue keeps repeated objects identical only inside a value with a cycle", () => {
  const shared = { shared: true };
  const plain = roundTrip([shared, shared]) as object[];
  assert.deepStrictEqual(plain, [shared, shared]);
  assert.notEqual(plain[0], plain[1]);

  const cyclic: unknown[] = [shared, shared];
  cyclic.push(cyclic);
  const back = roundTrip(cyclic) as object[];
  assert.equal(back[0], back[1]);
  assert.equal(back[2], back);
});

test("encodeValue round-trips a cycle in a value that needs escapes elsewhere", () => {
  const value: Record<string, unknown> = {
    text: "\uFEFF" + "x".repeat(100),
    dictionary: Object.assign(Object.create(null), { k: 1 }),
    far: new Date(8.64e15),
  };
  value.self = value;
  const back = assertRoundTrips(value) as Record<string, unknown>;
  assert.equal(back.self, back);
});

test("encodeValue refuses a cycle that returns to a Map, a Set or an escaped object", () => {
  const map = new Map<string, unknown>();
  map.set("self", map);
  assert.throws(() => encodeValue(map), {
    name: "TypeError",
    message: 'Cannot store the value at "get("self")": it is a Map that contains itself; ' +
      "a cycle can only return to a plain object or an array",
  });
  const set = new Set<unknown>();
  set.add({ set });
  assert.throws(() => encodeValue([set]), {
    name: "TypeError",
    message: 'Cannot store the value at "[0].values()[0].set": it is a Set that contains ' +
      "itself; a cycle can only return to a plain object or an array",
  });
  const dictionary = Object.create(null) as Record<string, unknown>;
  dictionary.self = dictionary;
  assert.throws(
    () => encodeValue(dictionary),
    /an object without a prototype that contains itself/,
  );
  const proto = JSON.parse('{"__proto__": 1}');
  proto.self = proto;
  assert.throws(() => encodeValue(proto), /"__proto__", "constructor" or U\+FEFF key/);
});

test("encodeValue detects a cycle at any depth without walking it more than once", () => {
  let value: Record<string, unknown> = { big: Array.from({ length: 100_000 }, (_, i) => i) };
  const root = value;
  for (let i = 0; i < MAX_DEPTH - 2; i++) value = value.next = { i };
  value.next = root;
  const started = performance.now();
  const back = roundTrip(root) as Record<string, unknown>;
  assert.ok(performance.now() - started < 5_000);
  let last = back;
  for (let i = 0; i < MAX_DEPTH - 2; i++) last = last.next as Record<string, unknown>;
  assert.equal(last.next, back);
});

// ---------------------------------------------------------------------------------------------
// Depth

test(`encodeValue accepts ${MAX_DEPTH} levels of nesting and refuses one more`, () => {
  const nest = (make: (inner: unknown) => unknown, levels: number, bottom: unknown): unknown => {
    let value = bottom;
    for (let i = 0; i < levels; i++) value = make(value);
    return value;
  };
  const makers: Array<(inner: unknown) => unknown> = [
    (inner) => [inner],
    (inner) => ({ a: inner }),
    (inner) => new Map([[1, inner]]),
    (inner) => new Map([[inner, 1]]),
    (inner) => new Set([inner]),
    (inner) => Object.assign(Object.create(null), { "\uFEFFa": inner }),
  ];
  for (const make of makers) {
    const deepest = nest(make, MAX_DEPTH, "bottom");
    assert.equal(cbor(roundTrip(deepest)), cbor(deepest));
    assert.equal(cbor(roundTrip(deepest, false)), cbor(deepest));
    assert.throws(() => encodeValue(make(deepest)), {
      name: "RangeError",
      message: `Cannot store a value nested more than ${MAX_DEPTH} levels deep: ` +
        "it might not decode within the call stack of another process",
    });
  }
  // A Date or a typed array is a level too.
  for (const bottom of [new Date(0), new Float64Array(1)]) {
    encodeValue(nest((inner) => [inner], MAX_DEPTH - 1, bottom));
    assert.throws(() => encodeValue(nest((inner) => [inner], MAX_DEPTH, bottom)), RangeError);
  }
});

// ---------------------------------------------------------------------------------------------
// Rejections

test("encodeValue refuses undefined, functions and symbols at the top level", () => {
  assert.throws(() => encodeValue(undefined), {
    name: "TypeError",
    message: "Cannot store undefined: reading a name that is not stored returns undefined",
  });
  assert.throws(() => encodeValue(() => 1), {
    name: "TypeError",
    message: `Cannot store a function: ${TOP_HINT}`,
  });
  assert.throws(() => encodeValue(class {}), { name: "TypeError", message: /a function/ });
  assert.throws(() => encodeValue(Symbol("s")), {
    name: "TypeError",
    message: `Cannot store a symbol: ${TOP_HINT}`,
  });
});

test("encodeValue refuses functions and symbols nested anywhere, naming their path", () => {
  const cases: Array<[unknown, string, string]> = [
    [{ a: { b: [1, 2, Symbol("x")] } }, "a.b[2]", "a symbol"],
    [[{ f: () => 1 }], "[0].f", "a function"],
    [{ "x y": [0, Symbol.iterator] }, '["x y"][1]', "a symbol"],
    [{ m: new Map([["k", () => 1]]) }, 'm.get("k")', "a function"],
    [new Map([[1, { n: Symbol() }]]), "get(1).n", "a symbol"],
    [new Map([[1n, Symbol()]]), "get(1n)", "a symbol"],
    [new Map([[{}, Symbol()]]), "values()[0]", "a symbol"],
    [new Map([[Symbol(), 1]]), "keys()[0]", "a symbol"],
    [{ s: new Set([1, () => 1]) }, "s.values()[1]", "a function"],
    [{ deep: { er: { est: [[[Math.max]]] } } }, "deep.er.est[0][0][0]", "a function"],
  ];
  for (const [value, path, noun] of cases) {
    assert.throws(() => encodeValue(value), {
      name: "TypeError",
      message: `Cannot store the value at "${path}": it is ${noun}`,
    });
  }
});

test("encodeValue refuses strings with a lone surrogate, in values and in keys", () => {
  const hint = "UTF-8 cannot encode it (String.prototype.toWellFormed() replaces them)";
  for (const text of ["\uD800", "a\uDC00b", "x".repeat(100) + "\uDBFF"]) {
    assert.throws(() => encodeValue(text), {
      name: "TypeError",
      message: `Cannot store a string with a lone surrogate: ${hint}`,
    });
    assert.throws(() => encodeValue({ a: [text] }), {
      name: "TypeError",
      message: `Cannot store the value at "a[0]": it is a string with a lone surrogate; ${hint}`,
    });
    assert.throws(() => encodeValue({ a: { [text]: 1 } }), {
      name: "TypeError",
      message: `Cannot store the value at "a": it is an object with a key that has a lone ` +
        `surrogate; ${hint}`,
    });
    assert.throws(() => encodeValue(new Map([[text, 1]])), /at "keys\(\)\[0\]"/);
    assert.throws(() => encodeValue(new Set([text])), /at "values\(\)\[0\]"/);
  }
  assertRoundTrips(["\uD83D\uDE00", "\uD800".toWellFormed()]);
});

test("encodeValue refuses a sparse array instead of filling its holes", () => {
  // deno-lint-ignore no-sparse-arrays
  assert.throws(() => encodeValue({ list: [1, , 3] }), {
    name: "TypeError",
    message: 'Cannot store the value at "list[1]": it is a hole in a sparse array; ' +
      "fill it with undefined or null",
  });
  assert.throws(() => encodeValue(new Array(3)), /at "\[0\]": it is a hole/);
});

test("encodeValue refuses class instances and unsupported built-ins, naming the type", () => {
  class Point {
    x = 1;
  }
  class MyMap extends Map {}
  const cases: Array<[unknown, string, string]> = [
    [new Point(), "an instance of Point", KEEPS_TYPE],
    [new MyMap(), "an instance of MyMap", KEEPS_TYPE],
    [new WeakMap(), "an instance of WeakMap", KEEPS_TYPE],
    [new WeakSet(), "an instance of WeakSet", KEEPS_TYPE],
    [Promise.resolve(1), "an instance of Promise", KEEPS_TYPE],
    [new String("boxed"), "an instance of String", KEEPS_TYPE],
    [Object(1n), "an instance of BigInt", KEEPS_TYPE],
    [Object.create({ inherited: 1 }), "an object with a custom prototype", KEEPS_TYPE],
    [new ArrayBuffer(4), "an ArrayBuffer", "store a Uint8Array over it instead"],
    [new SharedArrayBuffer(4), "a SharedArrayBuffer", "store a Uint8Array over it instead"],
    [new DataView(new ArrayBuffer(4)), "a DataView", "store a Uint8Array over its bytes instead"],
    [
      new Error("boom"),
      "an Error",
      "its type, stack and cause would be lost; store its name and message instead",
    ],
    [
      new TypeError("boom"),
      "a TypeError",
      "its type, stack and cause would be lost; store its name and message instead",
    ],
  ];
  const float16 = (globalThis as { Float16Array?: new (n: number) => unknown }).Float16Array;
  if (float16) cases.push([new float16(1), "an instance of Float16Array", KEEPS_TYPE]);
  for (const [value, noun, hint] of cases) {
    assert.throws(() => encodeValue(value), {
      name: "TypeError",
      message: `Cannot store ${noun}: ${hint}`,
    });
    assert.throws(() => encodeValue({ a: { b: value } }), {
      name: "TypeError",
      message: `Cannot store the value at "a.b": it is ${noun}; ${hint}`,
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Decoding errors

test("decodeValue refuses an unknown kind with a RangeError", () => {
  for (const kind of [0, 7, -1, 1.5, NaN]) {
    assert.throws(() => decodeValue(kind, new Uint8Array([1])), {
      name: "RangeError",
      message: `Cannot decode a value of kind ${kind}: the kinds are 1 (string), 2 (bytes), ` +
        "3 (CBOR), 4 (number), 5 (JSON) and 6 (records)",
    });
  }
  // Records need their store's table.
  assert.throws(() => decodeValue(6, new Uint8Array([0, 0, 0, 0, 0xa0])), {
    name: "TypeError",
    message: "Cannot decode records without the table of the store they are in",
  });
});

test("encodeValue stores a number as KIND_NUMBER, its 8 float64 bytes, and decodeValue refuses another length", () => {
  for (const value of [0, -0, 1, 2 ** 53, NaN, -Infinity, 5e-324]) {
    const { kind, bytes } = encodeValue(value);
    assert.equal(kind, KIND_NUMBER);
    assert.equal(bytes.length, 8);
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0, true), value);
    assert.ok(Object.is(decodeValue(kind, bytes.slice()), value));
  }
  assert.throws(() => decodeValue(KIND_NUMBER, new Uint8Array(7)), {
    name: "TypeError",
    message: "Cannot decode a stored number of 7 bytes: it must have 8",
  });
});

test("decodeValue reads a string holding U+FFFD, and refuses one that is not valid UTF-8", () => {
  for (const text of ["\uFFFD", "a\uFFFDb", "\uFFFD".repeat(1000)]) {
    assert.equal(roundTrip(text), text);
  }
  assert.throws(() => decodeValue(KIND_STRING, new Uint8Array([0x61, 0xff])), {
    name: "TypeError",
    message: "Cannot decode the stored string: its bytes are not valid UTF-8",
  });
});

test("decodeValue refuses CBOR that does not decode, with cbor-x's error as the cause", () => {
  const corrupt = [
    [],
    [0x83, 0x01],
    [0x01, 0x02],
    [0x1c],
    [0x7a, 0xff, 0xff, 0xff, 0xff],
    [0x9a, 0xff, 0xff, 0xff, 0xff],
    new Array(100_000).fill(0x81),
  ];
  for (const bytes of corrupt) {
    assert.throws(() => decodeValue(KIND_CBOR, new Uint8Array(bytes)), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Cannot decode the stored value: its CBOR is invalid \(.+\)$/);
      assert.ok(error.cause !== undefined);
      return true;
    });
  }
});

test("decodeValue refuses a malformed escape", () => {
  // Tag 40560 (escaped value) around tag 40561 (object) holding a number, not entries.
  assert.throws(() => decodeValue(KIND_CBOR, fromHex("d99e70d99e7101")), {
    name: "TypeError",
    message: "Cannot decode the stored value: its CBOR has a malformed escaped object",
  });
  assert.throws(() => decodeValue(KIND_CBOR, fromHex("d99e70d99eff01")), /malformed tag 40703/);
});

// ---------------------------------------------------------------------------------------------
// Across processes

// Every other runtime: what one encodes, each of the others decodes to the same value.
for (const other of RUNTIMES.filter((r) => r !== runtime)) {
  test(`decodeValue reads values encoded here identically in ${other}`, async () => {
    const lines = codecSamples().map(encodeLine);
    const { stdout } = await run(other, "_codec_child.ts", ["decode", ...lines]);
    assert.deepStrictEqual(stdout.trim().split("\n"), lines);
  });

  test(`decodeValue reads values encoded in ${other} as the same values`, async () => {
    const samples = codecSamples();
    const { stdout } = await run(other, "_codec_child.ts", ["encode"]);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, samples.length);
    lines.forEach((line, i) => {
      assert.equal(line, encodeLine(samples[i]), `sample ${i}`);
      const [kind, hex] = line.split(":");
      const value = decodeValue(Number(kind), fromHex(hex!));
      // Bun's deepStrictEqual is exponential in nested Sets: compare the deepest sample by bytes.
      if (i === samples.length - 1) assert.equal(encodeLine(value), line);
      else assert.deepStrictEqual(value, samples[i], `sample ${i}`);
    });
  });
}

const other = RUNTIMES.find((r) => r !== runtime)!;

test("decodeValue reads the same values where cbor-x runs without its native string decoder", async () => {
  const lines = codecSamples().map(encodeLine);
  const { stdout } = await run(other, "_codec_child.ts", ["decode", ...lines], {
    env: { CBOR_NATIVE_ACCELERATION_DISABLED: "true" },
  });
  assert.deepStrictEqual(stdout.trim().split("\n"), lines);
});
