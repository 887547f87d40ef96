// Shared helpers for the tokenizer tests: fixture paths, JSONL reading, the cl100k tokenizer built once, and the
// byte-level tokenizer the engine tests use.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/bpe/split.h"
#include "nanochat/tokenizer.h"

namespace tok_test {

inline std::string fixture(const std::string& rel) { return std::string(NANOCHAT_FIXTURES) + "/" + rel; }

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

// cl100k_base ranks under nanochat's pattern or GPT-4's, built once per process.
inline const nanochat::Tokenizer& cl100k(bool nanochat_pattern) {
  static const nanochat::Tokenizer a =
      nanochat::Tokenizer::from_tiktoken_file(fixture("tokenizer/cl100k_base.tiktoken"), nanochat::kSplitPattern,
                                              {{"<|endoftext|>", 100257}}, "<|endoftext|>", "cl100k_nanochat_pattern");
  static const nanochat::Tokenizer b =
      nanochat::Tokenizer::from_tiktoken_file(fixture("tokenizer/cl100k_base.tiktoken"), nanochat::kGpt4Pattern,
                                              {{"<|endoftext|>", 100257}}, "<|endoftext|>", "cl100k_base");
  return nanochat_pattern ? a : b;
}

inline const nanochat::Tokenizer& small_pkl() {
  static const nanochat::Tokenizer t = nanochat::Tokenizer::from_pkl_file(fixture("tokenizer_pkl/tokenizer.pkl"));
  return t;
}

// 256 single-byte tokens + nanochat's 9 specials (test_engine.py's ByteTokenizer), built once.
inline const nanochat::Tokenizer& byte_tokenizer() {
  static const nanochat::Tokenizer tok = [] {
    nanochat::Ranks ranks;
    for (int b = 0; b < 256; ++b) ranks.emplace_back(std::string(1, char(b)), b);
    return nanochat::make_nanochat_tokenizer(std::move(ranks));
  }();
  return tok;
}

}  // namespace tok_test
