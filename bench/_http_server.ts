/**
 * The HTTP benchmark's server under Bun and Node (bench/http_bench.ts starts it; Deno runs
 * bench/_http_deno.ts under `deno serve --parallel` instead), with two workers on one port as
 * their users run them:
 * - Bun: two processes of this file, each `Bun.serve({ reusePort: true })`;
 * - Node: one `node:cluster` primary that forks two workers with `node:http` servers.
 *
 * @module
 */
import process from "node:process";
import { answer, body, idOf, JSON_HEADERS, openSource } from "./_http_handler.ts";

const env = process.env;
const port = Number(env.MEMALLOC_HTTP_PORT ?? 8000);
const bun = (globalThis as { Bun?: { serve(options: object): unknown } }).Bun;

if (bun !== undefined) {
  const lookup = await openSource();
  bun.serve({
    port,
    hostname: "127.0.0.1",
    reusePort: true,
    fetch: (request: Request) => answer(request.url, lookup),
  });
} else {
  const cluster = (await import("node:cluster")).default;
  if (cluster.isPrimary) {
    const workers = Number(env.MEMALLOC_HTTP_WORKERS ?? 2);
    for (let i = 0; i < workers; i++) cluster.fork();
    const stop = () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
      process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  } else {
    const lookup = await openSource();
    const http = await import("node:http");
    http.createServer((request, response) => {
      const id = idOf(request.url ?? "");
      if (id < 0) {
        response.writeHead(404).end("not found");
        return;
      }
      Promise.resolve(lookup(id)).then((value) => {
        if (value === undefined) response.writeHead(500).end("no such session");
        else response.writeHead(200, JSON_HEADERS).end(body(value));
      });
    }).listen(port, "127.0.0.1");
  }
}
