// tiktoken_bench.js: tiktoken's (npm "tiktoken", the Rust core compiled to WASM) single-thread encode speed on the
// same corpus and the same document chunking as bench_tokenizer.cpp, for bench/RESULTS.md.
//   cd /tmp/tokbench && npm i tiktoken && NODE_PATH=$PWD/node_modules node /path/to/bench/tiktoken_bench.js corpus.txt
const fs = require("fs");
const { get_encoding } = require("tiktoken");

const text = fs.readFileSync(process.argv[2], "utf8");
// Documents: cut at the first newline after every 4096 bytes (same rule as bench_tokenizer.cpp).
function chunk(s) {
  const buf = Buffer.from(s, "utf8");
  const docs = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(buf.length, start + 4096);
    const nl = buf.indexOf(10, end);
    end = nl < 0 ? buf.length : nl + 1;
    docs.push(buf.subarray(start, end).toString("utf8"));
    start = end;
  }
  return docs;
}
const docs = chunk(text);
const bytes = Buffer.byteLength(text, "utf8");
const enc = get_encoding("cl100k_base");
function time(label, f, nbytes) {
  try {
    f();  // warm up
  } catch (e) {
    console.log(`${label}: FAILED (${String(e).split("\n")[0]})`);
    return;
  }
  // Best of 3, wall clock and CPU time (the CPU time is the fair number on a shared machine).
  let best = Infinity, bestCpu = Infinity, out;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    out = f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
  }
  const mb = nbytes / 1e6;
  console.log(`${label}: ${mb.toFixed(2)} MB, wall ${best.toFixed(3)} s = ${(mb / best).toFixed(2)} MB/s, ` +
              `cpu ${bestCpu.toFixed(3)} s = ${(mb / bestCpu).toFixed(2)} MB/s (${out} tokens)`);
}
time("tiktoken encode_ordinary, 1 thread, docs", () => docs.reduce((n, d) => n + enc.encode_ordinary(d).length, 0), bytes);
const letters = "a".repeat(10 * 1000 * 1000);
time("tiktoken 10 MB of 'a'", () => enc.encode_ordinary(letters).length, letters.length);
const emoji = "\u{1F600}".repeat(250 * 1000);
time("tiktoken 1 MB of one emoji", () => enc.encode_ordinary(emoji).length, 1000 * 1000);
enc.free();
