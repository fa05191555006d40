import assert from "node:assert/strict";
import { runtime, test } from "./_harness.ts";

test("runtime detects the runtime the tests run on", () => {
  assert.ok(
    runtime === "deno" || runtime === "bun" || runtime === "node",
    `unexpected runtime ${runtime}`,
  );
});
