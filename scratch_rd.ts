import { Memalloc } from "./mod.ts";
const name = `scratch-${crypto.randomUUID()}`;
const s = Memalloc.open(name, { maxMemory: 8 << 20 });
const v = "x".repeat(100);
for (let i = 0; i < 1024; i++) { s.write(`plain:${i}`, v); s.write(`ttl:${i}`, v, { ttl: 3_600_000 }); }
const pn = Array.from({ length: 1024 }, (_, i) => `plain:${i}`);
const tn = Array.from({ length: 1024 }, (_, i) => `ttl:${i}`);
function bench(names: string[]) { const N = 1_000_000; const t0 = performance.now(); for (let i = 0; i < N; i++) s.read(names[i & 1023]!); return (performance.now() - t0) * 1e6 / N; }
for (let r = 0; r < 5; r++) { const a = bench(pn), b = bench(tn); console.log(`plain ${a.toFixed(0)} ns  ttl ${b.toFixed(0)} ns  ratio ${(a / b).toFixed(3)}`); }
s.close(); Memalloc.unlink(name);
