// A child process for redis_test.ts: `<command> <url> <store> [args...]`; prints JSON lines.
import { RedisStore } from "../redis/store.ts";
import { say } from "./_child.ts";

const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const [command, url, storeName, ...args] = argv as [string, string, string, ...string[]];

/** Waits until the start time the parent gave (ms since the epoch), so children race. */
async function waitUntil(at: number): Promise<void> {
  while (Date.now() < at) await new Promise((resolve) => setTimeout(resolve, 1));
}

const store = await RedisStore.connect(url, storeName);
try {
  switch (command) {
    case "increment": {
      // <count> <start-at>: `count` increments of "counter", 16 in flight at a time.
      const [count, at] = args.map(Number) as [number, number];
      say({ ready: true });
      await waitUntil(at);
      let done = 0;
      while (done < count) {
        const batch = Math.min(16, count - done);
        await Promise.all(Array.from({ length: batch }, () => store.increment("counter")));
        done += batch;
      }
      say({ done });
      break;
    }
    case "add": {
      // <start-at> <id>: one add of "winner"; says whether it won.
      const [at, id] = args as [string, string];
      await waitUntil(Number(at));
      say({ won: await store.add("winner", id) });
      break;
    }
    case "update": {
      // <count> <id>: appends `id` to the list "log" `count` times through update.
      const [count, id] = args as [string, string];
      for (let i = 0; i < Number(count); i++) {
        await store.update<string[]>("log", (list = []) => [...list, id]);
      }
      say({ done: Number(count) });
      break;
    }
    default:
      throw new Error(`Unknown command ${command}`);
  }
} finally {
  await store.close();
}
