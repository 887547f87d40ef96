// tokenizer_pkl: tokenizer.pkl, the file Python nanochat saves its tokenizer in: pickle.dump of a
// tiktoken.core.Encoding (protocol 4). Its state is a dict {name, pat_str, mergeable_ranks: {bytes: int},
// special_tokens: {str: int}}.
//   TiktokenState st = parse_tokenizer_pkl(read_file(path), path);
//   std::string bytes = write_tokenizer_pkl(st);   // byte-identical to CPython's pickle.dump of the Encoding
// Reading and writing use pickle.h, whose writer reproduces CPython's C pickler byte for byte (64 KiB frames
// checked before every object, memoized str/bytes, 1000-item batches with the trailing empty batch at multiples
// of 1000, the smallest int opcodes).
// Not covered: pickles of registered encodings (tiktoken pickles those by name only), other protocols.
#pragma once

#include <string>
#include <string_view>

#include "nanochat/tokenizer.h"

namespace nanochat {

struct TiktokenState {
  std::string name;
  std::string pat_str;
  Ranks mergeable_ranks;
  SpecialTokens special_tokens;
};

TiktokenState parse_tokenizer_pkl(std::string_view bytes, const std::string& what);
std::string write_tokenizer_pkl(const TiktokenState& state);

}  // namespace nanochat
