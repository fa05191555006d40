/**
 * The HTTP benchmark's server under Deno: `DENO_JOBS=2 deno serve --parallel` runs this module's
 * default export in each of its workers (bench/http_bench.ts starts it).
 *
 * @module
 */
import { answer, openSource } from "./_http_handler.ts";

const lookup = await openSource();

export default {
  fetch: (request: Request): Promise<Response> => answer(request.url, lookup),
};
