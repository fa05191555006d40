/**
 * One test API over `Deno.test`, `bun:test` and `node:test`, so every test file runs unchanged
 * under `deno test`, `bun test` and `node --test`.
 *
 * @module
 */
import { runtime } from "../ffi/runtime.ts";

/** A test body; may be async. */
export type TestBody = () => void | Promise<void>;

/** Options for one test. */
export interface TestOptions {
  /** Skip the test, with this reason printed in its name. */
  ignore?: boolean;
  /** Time limit in milliseconds (Bun and Node; Deno has no per-test limit). */
  timeout?: number;
}

/** The signature of {@linkcode test}. */
export type TestFunction = (name: string, body: TestBody, options?: TestOptions) => void;

interface BunTestModule {
  test: ((name: string, body: TestBody, timeout?: number) => void) & {
    skip: (name: string, body: TestBody) => void;
  };
}

interface NodeTestModule {
  test(
    name: string,
    options: { skip?: boolean; timeout?: number },
    body: TestBody,
  ): unknown;
}

function makeTest(): Promise<TestFunction> | TestFunction {
  if (runtime === "node") {
    const specifier = "node:test";
    return (import(specifier) as Promise<NodeTestModule>).then(
      (node) => (name: string, body: TestBody, options?: TestOptions): void => {
        node.test(name, {
          skip: options?.ignore ?? false,
          timeout: options?.timeout ?? 120_000,
        }, body);
      },
    );
  }
  if (runtime === "bun") {
    // A variable specifier keeps Deno from resolving a `bun:` module.
    const specifier = "bun:test";
    return (import(specifier) as Promise<BunTestModule>).then(
      (bun) => (name: string, body: TestBody, options?: TestOptions): void => {
        if (options?.ignore) bun.test.skip(name, body);
        else bun.test(name, body, options?.timeout ?? 120_000);
      },
    );
  }
  return (name: string, body: TestBody, options?: TestOptions): void => {
    Deno.test({
      name,
      fn: body,
      ignore: options?.ignore ?? false,
      // Segments are closed by the tests themselves; spawned processes are awaited.
      sanitizeResources: false,
      sanitizeOps: false,
    });
  };
}

/** Registers a test with the runtime's own test runner. */
export const test: TestFunction = await makeTest();

/** The runtime the tests run on ("deno", "bun" or "node"). */
export { runtime };
