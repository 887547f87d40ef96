// hf_train_bench.js: HuggingFace tokenizers' BPE trainer (npm "tokenizers", Rust native) on the same corpus, set up
// like nanochat's HuggingFaceTokenizer.train: nanochat's split regex (isolated), then ByteLevel without its own
// regex, BPE model. The node binding trains with the model's default trainer (vocab 30000, min_frequency 0), so
// bench_tokenizer trains ours at 30000 too. Prints training time and the bytes/token of the result on the corpus.
//   cd /tmp/tokbench && npm i tokenizers && NODE_PATH=$PWD/node_modules node /path/to/bench/hf_train_bench.js corpus.txt
const fs = require("fs");
const { Tokenizer } = require("tokenizers");

const pattern = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,2}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const config = {
  version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [
    { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
    { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false } ] },
  post_processor: null,
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
           fuse_unk: false, byte_fallback: true, ignore_merges: false, vocab: {}, merges: [] },
};
(async () => {
  const file = process.argv[2];
  const tok = Tokenizer.fromString(JSON.stringify(config));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  tok.train([file]);
  const c = process.cpuUsage(c0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (c.user + c.system) / 1e6;
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split(/(?<=\n)/);  // encode line by line (the trainer also reads the file line by line)
  let tokens = 0;
  for (let i = 0; i < lines.length; i += 2000) {
    const encs = await tok.encodeBatch(lines.slice(i, i + 2000));
    for (const e of encs) tokens += e.getLength();
  }
  const bytes = Buffer.byteLength(text, "utf8");
  console.log(`HF tokenizers BPE train: wall ${secs.toFixed(2)} s, cpu ${cpu.toFixed(2)} s (all threads), vocab ${tok.getVocabSize()}, ` +
              `${tokens} tokens, ${(bytes / tokens).toFixed(4)} bytes/token`);
})();
