// tokenizer: nanochat's BPE tokenizer — a tiktoken-compatible Encoding (split regex + byte-level BPE ranks +
// special tokens) with nanochat's conveniences on top (BOS, prepend/append, batch encode, chat rendering).
//   auto tok = Tokenizer::from_directory(get_base_dir() / "tokenizer");     // reads tokenizer.pkl
//   auto ids = tok.encode("hello", "<|bos|>");                              // prepend by name or id
//   auto [ids, mask] = tok.render_conversation(conversation_json);
//   std::string text = tok.decode(ids);                                     // invalid UTF-8 -> U+FFFD
// Training lives in bpe_train.h (train_tokenizer below glues it in); files: tokenizer.pkl (tokenizer_pkl.h),
// .tiktoken rank files (tiktoken_file.h). token_bytes() is what tok_train saves as token_bytes.pt.
// Not covered: HuggingFace tokenizer.json files (nanochat/tokenizer.py HuggingFaceTokenizer, optional in nanochat and
// not needed here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanochat {

class Splitter;
class RankMap;

// nanochat's special tokens; their order defines their ids (appended after the mergeable tokens).
inline const std::vector<std::string> kSpecialTokens = {
    "<|bos|>",          "<|user_start|>", "<|user_end|>",     "<|assistant_start|>", "<|assistant_end|>",
    "<|python_start|>", "<|python_end|>", "<|output_start|>", "<|output_end|>"};

using Ranks = std::vector<std::pair<std::string, int32_t>>;          // token bytes -> rank (= id), dict order
using SpecialTokens = std::vector<std::pair<std::string, int32_t>>;  // name -> id, dict order

// A token given either by id or by special-token name (nanochat's prepend=/append= accept both).
struct TokenRef {
  int32_t id = -1;
  std::string name;
  TokenRef(int32_t i) : id(i) {}
  TokenRef(const char* n) : name(n) {}
  TokenRef(std::string n) : name(std::move(n)) {}
};

class Tokenizer {
 public:
  // The four fields of a pickled tiktoken Encoding, plus which special token is BOS.
  Tokenizer(std::string name, std::string pattern, Ranks mergeable_ranks, SpecialTokens special_tokens,
            const std::string& bos_token = "<|bos|>");

  static Tokenizer from_directory(const std::filesystem::path& dir);  // <dir>/tokenizer.pkl
  static Tokenizer from_pkl_file(const std::filesystem::path& path);
  // A .tiktoken rank file (e.g. cl100k_base) with a pattern and specials; used by tok_eval and the tests.
  static Tokenizer from_tiktoken_file(const std::filesystem::path& path, const std::string& pattern,
                                      SpecialTokens specials, const std::string& bos_token, std::string name);
  // tiktoken's "gpt2" or "cl100k_base" from its .tiktoken rank file (nothing is downloaded), with its pattern and
  // special tokens; BOS is <|endoftext|> as in nanochat's from_pretrained. Used by tok_eval.
  static Tokenizer from_pretrained(const std::string& name, const std::filesystem::path& tiktoken_file);
  // Writes <dir>/tokenizer.pkl atomically (byte-identical to Python's pickle.dump of the tiktoken Encoding).
  void save(const std::filesystem::path& dir) const;
  std::string to_pkl_bytes() const;

  const std::string& name() const { return name_; }
  const std::string& pattern() const { return pattern_; }
  const Ranks& mergeable_ranks() const { return ranks_; }
  const SpecialTokens& special_tokens() const { return specials_; }

  int32_t get_vocab_size() const { return int32_t(decoder_.size()); }  // max token id + 1 (tiktoken's n_vocab)
  int32_t get_bos_token_id() const { return bos_id_; }
  int32_t encode_special(std::string_view name) const;  // fails for a name that is not a special token
  int32_t resolve_token(const TokenRef& ref) const;     // a special name, or an id checked against the vocab
  bool is_special(int32_t id) const;

  // Split + BPE; never produces special tokens ("<|bos|>" in the text is ordinary bytes).
  std::vector<int32_t> encode_ordinary(std::string_view text) const;
  std::vector<int32_t> encode(std::string_view text, std::optional<TokenRef> prepend = std::nullopt,
                              std::optional<TokenRef> append = std::nullopt) const;
  // Encodes every text on num_threads threads; results in input order.
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts,
                                                 std::optional<TokenRef> prepend = std::nullopt,
                                                 std::optional<TokenRef> append = std::nullopt,
                                                 int num_threads = 8) const;
  // tiktoken's encode(text, allowed_special="all"): special-token names in the text become their ids.
  std::vector<int32_t> encode_with_specials(std::string_view text) const;

  std::string decode_bytes(const std::vector<int32_t>& ids) const;  // raw concatenated token bytes
  std::string decode(const std::vector<int32_t>& ids) const;        // UTF-8 with U+FFFD replacement
  std::string id_to_token(int32_t id) const { return decode({id}); }

  // Per token id: 0 for special tokens (by their text, as nanochat checks), else the UTF-8 length of decode([id])
  // (scripts/tok_train.py's token_bytes: U+FFFD counts 3).
  std::vector<int32_t> token_bytes() const;

  // Chat rendering (nanochat/tokenizer.py render_conversation). conversation = {"messages": [{"role", "content"},
  // ...]}.
  std::pair<std::vector<int32_t>, std::vector<int32_t>> render_conversation(const nlohmann::json& conversation,
                                                                            int max_tokens = 2048) const;
  std::vector<int32_t> render_for_completion(const nlohmann::json& conversation) const;
  std::string visualize_tokenization(const std::vector<int32_t>& ids, const std::vector<int32_t>& mask,
                                     bool with_token_id = false) const;

 private:
  std::string name_, pattern_;
  Ranks ranks_;
  SpecialTokens specials_;
  std::shared_ptr<const Splitter> splitter_;
  std::shared_ptr<const RankMap> encoder_;
  std::vector<std::string> decoder_;  // id -> bytes (specials: their name)
  std::vector<uint8_t> kind_;         // id -> 0 unused, 1 mergeable, 2 special
  int32_t bos_id_ = -1;
};

// nanochat's Encoding around trained mergeable ranks: name "rustbpe", nanochat's split pattern, and the 9 special
// tokens at ids len(ranks) .. len(ranks)+8. Fails if two tokens have the same bytes (Python would silently build a
// broken vocabulary from that).
Tokenizer make_nanochat_tokenizer(Ranks mergeable_ranks);
// Trains on documents held in memory (nanochat/tokenizer.py RustBPETokenizer.train_from_iterator, rustbpe semantics);
// vocab_size includes the 9 specials. tok_train streams instead (bpe_train.h).
Tokenizer train_tokenizer(const std::vector<std::string>& docs, int vocab_size);

}  // namespace nanochat
