// tokenizer: see tokenizer.h. Chat rendering is in tokenizer_chat.cpp, tokenizer.pkl in tokenizer_pkl.cpp.
#include "nanochat/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "nanochat/bpe/bpe.h"
#include "nanochat/bpe/bpe_train.h"
#include "nanochat/common.h"
#include "nanochat/bpe/split.h"
#include "nanochat/bpe/tiktoken_file.h"
#include "nanochat/tokenizer_pkl.h"
#include "nanochat/bpe/utf8.h"

namespace nanochat {

namespace fs = std::filesystem;

Tokenizer::Tokenizer(std::string name, std::string pattern, Ranks mergeable_ranks, SpecialTokens special_tokens,
                     const std::string& bos_token)
    : name_(std::move(name)), pattern_(std::move(pattern)), specials_(std::move(special_tokens)) {
  splitter_ = std::make_shared<const Splitter>(pattern_);
  // Python dict semantics: a repeated key keeps its first position and takes the last value.
  std::unordered_map<std::string, size_t> position;
  position.reserve(mergeable_ranks.size());
  for (auto& kv : mergeable_ranks) {
    auto [it, fresh] = position.emplace(kv.first, ranks_.size());
    if (fresh)
      ranks_.push_back(std::move(kv));
    else
      ranks_[it->second].second = kv.second;
  }
  auto enc = std::make_shared<RankMap>();
  int32_t max_id = -1;
  for (const auto& [bytes, rank] : ranks_) {
    if (rank < 0) fail("tokenizer '{}': negative rank {}", name_, rank);
    enc->insert(bytes, rank);
    max_id = std::max(max_id, rank);
  }
  for (const auto& [tok, id] : specials_) {
    if (id < 0) fail("tokenizer '{}': special token {} has negative id {}", name_, tok, id);
    max_id = std::max(max_id, id);
  }
  encoder_ = enc;
  decoder_.assign(size_t(max_id + 1), std::string());
  kind_.assign(size_t(max_id + 1), 0);
  for (const auto& [bytes, rank] : ranks_) {
    if (kind_[rank]) fail("tokenizer '{}': two tokens share rank {}", name_, rank);
    decoder_[rank] = bytes;
    kind_[rank] = 1;
  }
  for (const auto& [tok, id] : specials_) {
    if (kind_[id]) fail("tokenizer '{}': special token {} reuses id {}", name_, tok, id);
    decoder_[id] = tok;
    kind_[id] = 2;
  }
  bos_id_ = encode_special(bos_token);
}

Tokenizer Tokenizer::from_directory(const fs::path& dir) { return from_pkl_file(dir / "tokenizer.pkl"); }

Tokenizer Tokenizer::from_pkl_file(const fs::path& path) {
  if (!fs::exists(path)) fail("tokenizer file {} does not exist; train one with `nanochat tok_train`", path.string());
  TiktokenState st = parse_tokenizer_pkl(read_file(path), path.string());
  Tokenizer tok(std::move(st.name), std::move(st.pat_str), std::move(st.mergeable_ranks), std::move(st.special_tokens),
                "<|bos|>");
  // What a byte-level BPE needs to encode any text, checked now rather than at the first request that needs it:
  // every single byte is a token, and the split pattern covers text (one matching nothing encodes all to nothing).
  const std::string fix = "the file is damaged or not a nanochat tokenizer; retrain with `nanochat tok_train`";
  for (int b = 0; b < 256; ++b)
    if (tok.encoder_->find(std::string(1, char(b))) < 0)
      fail("tokenizer {} has no token for the byte 0x{:02x}; {}", path.string(), b, fix);
  const std::string probe = "Hello world, it's 2026! 12345 \u00fcber caf\u00e9 \u4f60\u597d\n\tindent  spaces?!\n";
  size_t covered = 0;
  tok.splitter_->for_each(probe, [&](std::string_view piece) { covered += piece.size(); });
  if (covered != probe.size())
    fail("tokenizer {}: its split pattern '{}' covers {} of {} bytes of a probe text; {}", path.string(), tok.pattern_,
         covered, probe.size(), fix);
  return tok;
}

Tokenizer Tokenizer::from_tiktoken_file(const fs::path& path, const std::string& pattern, SpecialTokens specials,
                                        const std::string& bos_token, std::string name) {
  return Tokenizer(std::move(name), pattern, read_tiktoken_file(path), std::move(specials), bos_token);
}

Tokenizer Tokenizer::from_pretrained(const std::string& name, const fs::path& tiktoken_file) {
  if (name == "gpt2")
    return from_tiktoken_file(tiktoken_file, kGpt2Pattern, {{"<|endoftext|>", 50256}}, "<|endoftext|>", name);
  if (name == "cl100k_base")
    return from_tiktoken_file(tiktoken_file, kGpt4Pattern,
                              {{"<|endoftext|>", 100257},
                               {"<|fim_prefix|>", 100258},
                               {"<|fim_middle|>", 100259},
                               {"<|fim_suffix|>", 100260},
                               {"<|endofprompt|>", 100276}},
                              "<|endoftext|>", name);
  fail("unknown pretrained encoding '{}' (known: gpt2, cl100k_base)", name);
}

std::string Tokenizer::to_pkl_bytes() const { return write_tokenizer_pkl({name_, pattern_, ranks_, specials_}); }

void Tokenizer::save(const fs::path& dir) const {
  fs::create_directories(dir);
  write_file_atomic(dir / "tokenizer.pkl", to_pkl_bytes());
}

int32_t Tokenizer::encode_special(std::string_view name) const {
  for (const auto& [tok, id] : specials_)
    if (tok == name) return id;
  fail("'{}' is not a special token of this tokenizer", std::string(name));
}

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && size_t(id) < kind_.size() && kind_[id] == 2; }

int32_t Tokenizer::resolve_token(const TokenRef& ref) const {
  if (!ref.name.empty()) return encode_special(ref.name);
  if (ref.id < 0 || ref.id >= get_vocab_size())
    fail("token id {} is outside the vocabulary [0, {})", ref.id, get_vocab_size());
  return ref.id;
}

std::vector<int32_t> Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::string cleaned;
  if (!is_valid_utf8(text)) {  // a Python str is always valid; invalid bytes become U+FFFD as in bytes.decode
    cleaned = decode_utf8_replace(text);
    text = cleaned;
  }
  const RankMap& enc = *encoder_;
  splitter_->for_each(text, [&](std::string_view piece) { bpe_encode(enc, piece, out); });
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, std::optional<TokenRef> prepend,
                                       std::optional<TokenRef> append) const {
  int32_t pre = prepend ? resolve_token(*prepend) : -1, app = append ? resolve_token(*append) : -1;
  std::vector<int32_t> ids;
  if (pre >= 0) ids.push_back(pre);
  std::vector<int32_t> body = encode_ordinary(text);
  if (ids.empty()) {
    ids = std::move(body);
  } else {
    ids.insert(ids.end(), body.begin(), body.end());
  }
  if (app >= 0) ids.push_back(app);
  return ids;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          std::optional<TokenRef> prepend,
                                                          std::optional<TokenRef> append, int num_threads) const {
  int32_t pre = prepend ? resolve_token(*prepend) : -1, app = append ? resolve_token(*append) : -1;
  std::vector<std::vector<int32_t>> out(texts.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < texts.size();) {
      std::vector<int32_t> ids = encode_ordinary(texts[i]);
      if (pre >= 0) ids.insert(ids.begin(), pre);
      if (app >= 0) ids.push_back(app);
      out[i] = std::move(ids);
    }
  };
  size_t n_threads = std::min<size_t>(std::max(1, num_threads), texts.size());
  if (n_threads <= 1) {
    work();
    return out;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mu;
  for (size_t t = 0; t < n_threads; t++)
    pool.emplace_back([&] {
      try {
        work();
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        next = texts.size();
      }
    });
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  return out;
}

std::vector<int32_t> Tokenizer::encode_with_specials(std::string_view text) const {
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    // Leftmost special token occurrence (longest name first when two start at the same place).
    size_t best = std::string_view::npos, best_len = 0;
    int32_t best_id = -1;
    for (const auto& [tok, id] : specials_) {
      size_t at = text.find(tok, pos);
      if (at == std::string_view::npos) continue;
      if (at < best || (at == best && tok.size() > best_len)) best = at, best_len = tok.size(), best_id = id;
    }
    std::string_view chunk = text.substr(pos, best == std::string_view::npos ? std::string_view::npos : best - pos);
    std::vector<int32_t> ids = encode_ordinary(chunk);
    out.insert(out.end(), ids.begin(), ids.end());
    if (best == std::string_view::npos) break;
    out.push_back(best_id);
    pos = best + best_len;
  }
  return out;
}

std::string Tokenizer::decode_bytes(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= kind_.size() || !kind_[id])
      fail("cannot decode token id {}: not in the vocabulary (size {})", id, get_vocab_size());
    out += decoder_[id];
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const { return decode_utf8_replace(decode_bytes(ids)); }

std::vector<int32_t> Tokenizer::token_bytes() const {
  std::vector<int32_t> out(decoder_.size());
  for (size_t id = 0; id < decoder_.size(); id++) {
    if (!kind_[id]) fail("token id {} is missing from the vocabulary; cannot compute token_bytes", id);
    if (kind_[id] == 2) continue;
    std::string text = decode_utf8_replace(decoder_[id]);
    bool special_text = false;
    for (const auto& [tok, sid] : specials_) special_text |= tok == text;
    out[id] = special_text ? 0 : int32_t(text.size());
  }
  return out;
}

Tokenizer make_nanochat_tokenizer(Ranks mergeable_ranks) {
  // Same construction as nanochat: ranks into a dict, specials start at the number of distinct byte strings.
  std::unordered_map<std::string_view, int32_t> first_id;
  for (const auto& [bytes, id] : mergeable_ranks) {
    auto [it, fresh] = first_id.emplace(bytes, id);
    if (!fresh)
      fail(
          "training produced two tokens with the same bytes (ids {} and {}); that vocabulary cannot be saved as a "
          "tiktoken encoding; train with a different --vocab-size or more text",
          it->second, id);
  }
  SpecialTokens specials;
  int32_t offset = int32_t(mergeable_ranks.size());
  for (size_t i = 0; i < kSpecialTokens.size(); i++) specials.emplace_back(kSpecialTokens[i], offset + int32_t(i));
  return Tokenizer("rustbpe", kSplitPattern, std::move(mergeable_ranks), std::move(specials), "<|bos|>");
}

Tokenizer train_tokenizer(const std::vector<std::string>& docs, int vocab_size) {
  int n_special = int(kSpecialTokens.size());
  if (vocab_size - n_special < 256)
    fail("vocab size {} is too small: it must leave at least 256 byte tokens after the {} special tokens", vocab_size,
         n_special);
  BpeTrainer trainer(kSplitPattern);
  trainer.add_documents(docs);
  return make_nanochat_tokenizer(trainer.train(vocab_size - n_special));
}

}  // namespace nanochat
