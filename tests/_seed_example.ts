// The PHP library's example, line for line, on the default store (the test names it in MEMALLOC_STORE).
import * as memalloc from "../mod.ts";

memalloc.write("var1", "Foobar");
let data = memalloc.read("var1");
data += "123";
memalloc.write("var1", data);
console.log(memalloc.read("var1"));
memalloc.delete("var1");
