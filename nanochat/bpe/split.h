// split: the regex pre-tokenizer. Cuts text into the pieces BPE works on, exactly as tiktoken/rustbpe do with
// fancy_regex: find-all, leftmost match, alternatives tried left to right. Runs on PCRE2 (UTF + UCP, JIT),
// which has the possessive quantifiers and lookahead these patterns need.
//   Splitter sp(kSplitPattern);
//   sp.for_each(text, [](std::string_view piece) { ... });   // text must be valid UTF-8
// Not covered: invalid UTF-8 (callers clean it first, see utf8.h), patterns that can match the empty string
// (handled, but such a pattern is not a tokenizer pattern).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nanochat {

// nanochat's pattern: GPT-4's with numbers split into groups of at most 2 digits.
inline constexpr const char* kSplitPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
// GPT-4 (cl100k_base).
inline constexpr const char* kGpt4Pattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
// GPT-2 (r50k_base / gpt2), as tiktoken writes it.
inline constexpr const char* kGpt2Pattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";

class Splitter {
 public:
  explicit Splitter(const std::string& pattern);  // fails with an Error if the pattern does not compile
  ~Splitter();
  Splitter(const Splitter&) = delete;
  Splitter& operator=(const Splitter&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Calls f(piece) for every match, in order. Safe to call from many threads at once.
  template <typename F>
  void for_each(std::string_view text, F&& f) const {
    size_t pos = 0;
    size_t start, end;
    while (next_match(text, pos, start, end)) {
      f(text.substr(start, end - start));
      pos = end;
    }
  }
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  // Finds the next match at or after pos; false when there is none. Never returns an empty match.
  bool next_match(std::string_view text, size_t pos, size_t& start, size_t& end) const;
  std::string pattern_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nanochat
