// A child process for near_cache_test.ts. `reader <url> <remote> <local> <key> <last>`: a
// process of machine B. It reads `key` through the machine's NearCache as fast as it can, and
// prints each new value it sees with the time it saw it, until it sees `last`; then its stats.
import { setImmediate } from "node:timers";
import { NearCache } from "../redis/near_cache.ts";
import { RedisStore } from "../redis/store.ts";
import { say } from "./_child.ts";

const argv = (globalThis as { process?: { argv: string[] } }).process!.argv.slice(2);
const [command, url, remoteName, localName, key, last] = argv as [
  string,
  string,
  string,
  string,
  string,
  string,
];
if (command !== "reader" && command !== "lead") throw new Error(`Unknown command ${command}`);

const remote = await RedisStore.connect(url, remoteName);
const cache = await NearCache.open(localName, remote, { ttl: 60_000, lease: 400 });
if (command === "lead") {
  // `lead <url> <remote> <local>`: holds the machine's lease until it is killed.
  say({ ready: true, leader: cache.stats().leader });
  await new Promise(() => setInterval(() => {}, 1_000));
}
try {
  say({ ready: true, leader: cache.stats().leader });
  let seen = -1;
  let reads = 0;
  while (seen < Number(last)) {
    const value = (await cache.get<number>(key)) ?? -1;
    reads++;
    if (value < seen) {
      say({ error: `read ${value} after ${seen}: stale` });
      break;
    }
    if (value > seen) {
      seen = value;
      say({ value, at: Date.now() });
    }
    // Let the event loop run: the leader's subscription is in this loop too.
    await new Promise((resolve) => setImmediate(resolve));
  }
  say({ done: true, reads, ...cache.stats(), local: undefined });
} finally {
  cache.close();
  await remote.close();
}
