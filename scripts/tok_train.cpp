// tok_train: train nanochat's BPE tokenizer (scripts/tok_train.py) and save tokenizer.pkl + token_bytes.pt.
//   nanochat tok_train                                   # the pretraining shards of the base dir, vocab 32768
//   nanochat tok_train --input a.txt b.jsonl --vocab-size 4096 --output-dir /tmp/tok
// Documents come from the train split of the pretraining shards (every row group in order), or from --input
// files: *.jsonl gives one document per line (field "text"), *.parquet every row of its "text" column, any other
// file is one document. Each document is
// cropped to --doc-cap characters; training stops after the document that takes the total past --max-chars.
// Writes the report section "Tokenizer training" (the flags, training time, token byte-length statistics).
#include <chrono>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "nanochat/bpe/bpe_train.h"
#include "nanochat/common.h"
#include "nanochat/dataset.h"
#include "nanochat/cli/flags.h"
#include "nanochat/formats/parquet.h"
#include "nanochat/report.h"
#include "nanochat/bpe/split.h"
#include "nanochat/tokenizer.h"
#include "nanochat/bpe/utf8.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

// Calls f(doc) for every document of the --input files, in order; f returns false to stop.
void iterate_input_files(const std::vector<std::string>& inputs, const std::function<bool(std::string&&)>& f) {
  for (const auto& path : inputs) {
    if (!fs::is_regular_file(path)) fail("--input {}: no such file", path);
    std::string ext = fs::path(path).extension().string();
    if (ext == ".parquet") {
      ParquetFile pf(path);
      for (int rg = 0; rg < pf.num_row_groups(); rg++)
        for (auto& doc : pf.read_strings(rg, "text"))
          if (!f(std::move(doc))) return;
      continue;
    }
    if (ext != ".jsonl") {
      if (!f(read_file(path))) return;
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    std::string line;
    for (size_t line_no = 1; std::getline(in, line); line_no++) {
      if (line.empty() || line == "\r") continue;
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const std::exception& e) {
        fail("--input {} line {}: not valid JSON ({})", path, line_no, e.what());
      }
      if (!row.is_object() || !row.contains("text") || !row["text"].is_string())
        fail("--input {} line {}: expected an object with a string field \"text\"", path, line_no);
      if (!f(row["text"].get<std::string>())) return;
    }
  }
}

// The train split of the pretraining shards: files in order, every row group, every document.
void iterate_shards(const std::function<bool(std::string&&)>& f) {
  parquets_iter_batched("train", 0, 1, [&](std::vector<std::string>&& docs) {
    for (auto& doc : docs)
      if (!f(std::move(doc))) return false;
    return true;
  });
}

// Byte length of the first n code points of valid UTF-8 text (Python's text[:n]).
size_t prefix_bytes(std::string_view s, int64_t n) {
  size_t i = 0;
  for (int64_t k = 0; k < n && i < s.size(); k++) {
    i++;
    while (i < s.size() && (uint8_t(s[i]) & 0xC0) == 0x80) i++;
  }
  return i;
}

}  // namespace

int tok_train_main(int argc, char** argv) {
  int64_t max_chars = 2'000'000'000;
  int64_t doc_cap = 10'000;
  int vocab_size = 32768;
  std::vector<std::string> inputs;
  std::string output_dir;
  Flags app{"Train the BPE tokenizer (rustbpe semantics) and save tokenizer.pkl and token_bytes.pt",
            "nanochat tok_train"};
  app.add_option("--max-chars", max_chars, "maximum characters to train on");
  app.add_option("--doc-cap", doc_cap, "maximum characters per document");
  app.add_option("--vocab-size", vocab_size, "vocabulary size, including the 9 special tokens");
  app.add_option(
      "--input", inputs,
      "text files (one document each), .jsonl (field \"text\") or .parquet files; default: the pretraining shards");
  app.add_option("--output-dir", output_dir, "where to save (default: <base_dir>/tokenizer)");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  if (vocab_size - int(kSpecialTokens.size()) < 256)
    fail("--vocab-size {} is too small: it must be at least {} (256 byte tokens + {} special tokens)", vocab_size,
         256 + kSpecialTokens.size(), kSpecialTokens.size());
  if (doc_cap <= 0) fail("--doc-cap must be positive, got {}", doc_cap);
  if (max_chars <= 0) fail("--max-chars must be positive, got {}", max_chars);
  print0f("max_chars: {}", max_chars);
  print0f("doc_cap: {}", doc_cap);
  print0f("vocab_size: {}", vocab_size);

  // Stream documents into the trainer in buffers of 8192, as rustbpe pulls them.
  auto t0 = std::chrono::steady_clock::now();
  BpeTrainer trainer(kSplitPattern);
  std::vector<std::string> buffer;
  int64_t nchars = 0, ndocs = 0;
  auto take = [&](std::string&& doc) {
    if (!is_valid_utf8(doc)) doc = decode_utf8_replace(doc);
    doc.resize(prefix_bytes(doc, doc_cap));
    nchars += int64_t(utf8_length(doc));
    ndocs++;
    buffer.push_back(std::move(doc));
    if (buffer.size() == 8192) {
      trainer.add_documents(buffer);
      buffer.clear();
    }
    return nchars <= max_chars;
  };
  if (!inputs.empty())
    iterate_input_files(inputs, take);
  else
    iterate_shards(take);
  if (!buffer.empty()) trainer.add_documents(buffer);
  if (ndocs == 0) fail("no documents to train on (the inputs are empty)");
  print0f("Training on {} documents, {} characters, {} unique pieces", ndocs, nchars, trainer.num_unique_pieces());
  Tokenizer tok = make_nanochat_tokenizer(trainer.train(vocab_size - int(kSpecialTokens.size())));
  double train_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  print0f("Training time: {:.2f}s", train_time);
  if (tok.get_vocab_size() != vocab_size)
    print0f("warning: the text only allowed {} merges, so the vocabulary has {} tokens instead of {}",
            tok.mergeable_ranks().size() - 256, tok.get_vocab_size(), vocab_size);

  fs::path dir = output_dir.empty() ? get_base_dir() / "tokenizer" : fs::path(output_dir);
  tok.save(dir);
  print0f("Saved tokenizer encoding to {}", (dir / "tokenizer.pkl").string());

  // Sanity check: an exact round trip of mixed text.
  const std::string test_text =
      "The quick brown fox, version 2.0!\n"
      "Counts: 7, 42, 1984, 31337\n"
      "Contractions: we'll, she's, they'd, I'M\n"
      "Symbols: <>{}[]|~`^ -- ...\n"
      "Mixed: 東京タワー and 北京 🦊🚀 ok";
  if (tok.decode(tok.encode(test_text)) != test_text) fail("the trained tokenizer does not round-trip its test text");

  // token_bytes.pt: UTF-8 length of each token's decoded text, 0 for special tokens.
  std::vector<int32_t> tb = tok.token_bytes();
  at::Tensor t = torch::tensor(tb, torch::kInt32);
  std::vector<char> bytes = torch::pickle_save(t);
  write_file_atomic(dir / "token_bytes.pt", std::string_view(bytes.data(), bytes.size()));
  print0f("Saved token_bytes to {}", (dir / "token_bytes.pt").string());

  double sum = 0, sum2 = 0;
  int32_t mn = INT32_MAX, mx = 0;
  int64_t n = 0;
  for (int32_t b : tb) {
    if (b <= 0) continue;
    mn = std::min(mn, b);
    mx = std::max(mx, b);
    sum += b;
    n++;
  }
  double mean = n ? sum / double(n) : 0;
  for (int32_t b : tb)
    if (b > 0) sum2 += (b - mean) * (b - mean);
  double stdev = n > 1 ? std::sqrt(sum2 / double(n - 1)) : 0;
  print0f("train_time: {:.2f} | num_special_tokens: {} | token_bytes min: {} max: {} mean: {:.4f} std: {:.4f}",
          train_time, kSpecialTokens.size(), mn, mx, mean, stdev);

  ReportItem config;
  config["max_chars"] = max_chars;
  config["doc_cap"] = doc_cap;
  config["vocab_size"] = vocab_size;
  config["input"] = inputs;
  config["output_dir"] = output_dir;
  ReportItem stats;
  stats["token_bytes_min"] = mn;
  stats["token_bytes_max"] = mx;
  stats["token_bytes_mean"] = mean;
  stats["token_bytes_std"] = stdev;
  get_report().log("Tokenizer training", {config, ReportItem{{"train_time", train_time}},
                                          ReportItem{{"num_special_tokens", int64_t(kSpecialTokens.size())}}, stats});
  return 0;
}
