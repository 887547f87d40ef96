// Tokenizer parity with tiktoken and nanochat: every fixture case (cl100k ranks under nanochat's and GPT-4's
// split patterns; the small tokenizer.pkl vocabulary with its chat renderings), token_bytes, tokenizer.pkl
// read/write byte identity, decoding with U+FFFD exactly like Python.
#include <gtest/gtest.h>

#include "nanochat/bpe/tiktoken_file.h"
#include "nanochat/tokenizer_pkl.h"
#include "nanochat/bpe/utf8.h"
#include "tests/unit/tokenizer_test_util.h"

using namespace nanochat;
using tok_test::fixture;
using tok_test::read_jsonl;
using json = nlohmann::json;

static std::vector<int32_t> as_ids(const json& j) { return j.get<std::vector<int32_t>>(); }

static void check_cases(const Tokenizer& tok, const char* file, const char* field) {
  auto rows = read_jsonl(fixture(file));
  int checked = 0, mismatches = 0;
  for (const auto& row : rows) {
    if (!row.contains(field)) continue;
    const std::string text = row["text"].get<std::string>();
    auto got = tok.encode_ordinary(text);
    auto want = as_ids(row[field]);
    checked++;
    if (got != want && ++mismatches <= 5) ADD_FAILURE() << field << " mismatch for " << json(text).dump();
    EXPECT_EQ(tok.decode(got), text);
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(checked, 544);
}

TEST(TokenizerParity, Cl100kNanochatPatternAllCases) {
  check_cases(tok_test::cl100k(true), "tokenizer/encode_cases.jsonl", "nanochat_pattern_ids");
}
TEST(TokenizerParity, Cl100kGpt4PatternAllCases) {
  check_cases(tok_test::cl100k(false), "tokenizer/encode_cases.jsonl", "gpt4_pattern_ids");
}
TEST(TokenizerParity, PklVocabAllCases) {
  check_cases(tok_test::small_pkl(), "tokenizer_pkl/encode_cases.jsonl", "ids");
}

TEST(TokenizerParity, PklCaseWithSpecialsAllowed) {
  int n = 0;
  for (const auto& row : read_jsonl(fixture("tokenizer_pkl/encode_cases.jsonl"))) {
    if (!row.contains("ids_with_special")) continue;
    n++;
    EXPECT_EQ(tok_test::small_pkl().encode_with_specials(row["text"].get<std::string>()),
              as_ids(row["ids_with_special"]));
  }
  EXPECT_EQ(n, 1);
}

TEST(TokenizerParity, RenderConversationCases) {
  const Tokenizer& tok = tok_test::small_pkl();
  auto rows = read_jsonl(fixture("tokenizer_pkl/render_cases.jsonl"));
  ASSERT_EQ(rows.size(), 5u);
  for (const auto& row : rows) {
    int max_tokens = row.value("max_tokens", 2048);
    auto [ids, mask] = tok.render_conversation(row["conversation"], max_tokens);
    EXPECT_EQ(ids, as_ids(row["ids"]));
    EXPECT_EQ(mask, as_ids(row["mask"]));
    if (row.contains("completion_ids"))
      EXPECT_EQ(tok.render_for_completion(row["conversation"]), as_ids(row["completion_ids"]));
  }
}

TEST(TokenizerParity, PklFieldsAndSpecials) {
  const Tokenizer& tok = tok_test::small_pkl();
  EXPECT_EQ(tok.name(), "rustbpe");
  EXPECT_EQ(tok.pattern(), kSplitPattern);
  EXPECT_EQ(tok.mergeable_ranks(), read_tiktoken_file(fixture("tokenizer_pkl/tokenizer.pkl.ranks.tiktoken")));
  ASSERT_EQ(tok.special_tokens().size(), kSpecialTokens.size());
  for (size_t i = 0; i < kSpecialTokens.size(); i++) {
    EXPECT_EQ(tok.special_tokens()[i].first, kSpecialTokens[i]);
    EXPECT_EQ(tok.encode_special(kSpecialTokens[i]), 1024 + int(i));
    EXPECT_EQ(tok.id_to_token(1024 + int(i)), kSpecialTokens[i]);
  }
  EXPECT_EQ(tok.get_bos_token_id(), 1024);
  EXPECT_EQ(tok.get_vocab_size(), 1033);
  EXPECT_THROW(tok.encode_special("<|nope|>"), Error);
  // Ordinary encoding never yields specials, even for their literal text.
  for (int32_t id : tok.encode("<|bos|><|assistant_end|>")) EXPECT_LT(id, 1024);
  EXPECT_EQ(tok.encode("hi", "<|bos|>", 1028).front(), 1024);
  EXPECT_EQ(tok.encode("hi", "<|bos|>", 1028).back(), 1028);
}

TEST(TokenizerPkl, RewriteIsByteIdentical) {
  for (const char* f : {"tokenizer_pkl/tokenizer.pkl", "python_basedir/tokenizer/tokenizer.pkl"}) {
    std::string original = read_file(fixture(f));
    Tokenizer tok = Tokenizer::from_pkl_file(fixture(f));
    EXPECT_EQ(tok.to_pkl_bytes(), original) << f;
  }
}

TEST(TokenizerPkl, RejectsOtherFiles) {
  EXPECT_THROW(parse_tokenizer_pkl("", "empty"), Error);
  EXPECT_THROW(parse_tokenizer_pkl("\x80\x04K\x01.", "int"), Error);
  std::string good = read_file(fixture("tokenizer_pkl/tokenizer.pkl"));
  for (size_t cut : {size_t(1), size_t(50), good.size() / 2, good.size() - 1})
    EXPECT_THROW(parse_tokenizer_pkl(good.substr(0, cut), "truncated"), Error);
  EXPECT_THROW(Tokenizer::from_pkl_file("/nonexistent/tokenizer.pkl"), Error);
}

TEST(TokenizerParity, TokenBytesMatchPython) {
  json j = json::parse(read_file(fixture("python_basedir/tokenizer/token_bytes.json")));
  Tokenizer tok = Tokenizer::from_directory(fixture("python_basedir/tokenizer"));
  EXPECT_EQ(tok.token_bytes(), as_ids(j["token_bytes"]));
}

TEST(TokenizerDecode, ReplacementLikePython) {
  // Expected strings from Python: bytes.decode("utf-8", errors="replace").
  const std::string R = "\xEF\xBF\xBD";
  EXPECT_EQ(decode_utf8_replace("\xE6"), R);      // lone lead byte
  EXPECT_EQ(decode_utf8_replace("\xE6\x97"), R);  // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(decode_utf8_replace("\xE6\x97"
                                "A"),
            R + "A");
  EXPECT_EQ(decode_utf8_replace("\x80\x80"), R + R);          // each stray continuation byte
  EXPECT_EQ(decode_utf8_replace("\xC0\xAF"), R + R);          // overlong lead bytes are invalid alone
  EXPECT_EQ(decode_utf8_replace("\xED\xA0\x80"), R + R + R);  // surrogate: ED then 2 strays
  EXPECT_EQ(decode_utf8_replace("\xF0\x9F\x98"), R);          // truncated emoji
  EXPECT_EQ(decode_utf8_replace("\xF0\x80\x80\x80"), R + R + R + R);
  EXPECT_EQ(decode_utf8_replace("\xF4\x90\x80\x80"), R + R + R + R);  // above U+10FFFF
  EXPECT_EQ(decode_utf8_replace("\xFF"
                                "a\xFE"),
            R + "a" + R);
  EXPECT_EQ(decode_utf8_replace("\xE2\x82\xAC"), "\xE2\x82\xAC");
}

TEST(TokenizerEncode, InvalidUtf8IsReplacedFirst) {
  const Tokenizer& tok = tok_test::cl100k(true);
  EXPECT_EQ(tok.encode_ordinary("a\xFF"
                                "b"),
            tok.encode_ordinary("a\xEF\xBF\xBD"
                                "b"));
}

TEST(TokenizerEncode, BatchMatchesSingleInOrder) {
  const Tokenizer& tok = tok_test::cl100k(true);
  std::vector<std::string> texts;
  for (const auto& row : read_jsonl(fixture("tokenizer/encode_cases.jsonl"))) texts.push_back(row["text"]);
  auto batch = tok.encode_batch(texts, "<|endoftext|>", std::nullopt, 4);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); i++) {
    auto single = tok.encode(texts[i], 100257);
    EXPECT_EQ(batch[i], single);
  }
}
