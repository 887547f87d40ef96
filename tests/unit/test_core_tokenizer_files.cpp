// tokenizer.pkl files we write, checked by Python's own pickle (tests/e2e/tokenizer_pkl_check.py with a stand-in for
// tiktoken's Encoding): every shape the writer can meet — tiny and huge dicts, dict sizes at multiples of the
// pickler's 1000-item batches, tokens of 256+ bytes, ids above 65535 — must load, and re-pickle to the same bytes,
// which pins frames, memo and opcode choice to CPython's. Skipped when /usr/bin/python3 is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <unistd.h>

#include "nanochat/tokenizer_pkl.h"
#include "tests/unit/tokenizer_test_util.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const char* name) {
  const char* t = std::getenv("TMPDIR");
  fs::path d =
      fs::path(t && *t ? t : "/tmp") / (std::string("nanochat_tok_") + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

bool have_python() { return fs::exists("/usr/bin/python3"); }

int run_python_check(const std::vector<fs::path>& files, const fs::path& json_out = {}) {
  std::string cmd = "/usr/bin/python3 " + std::string(NANOCHAT_FIXTURES) + "/../e2e/tokenizer_pkl_check.py";
  if (!json_out.empty()) cmd += " --dump-json";
  for (const auto& f : files) cmd += " '" + f.string() + "'";
  cmd += json_out.empty() ? " > /dev/null" : " > '" + json_out.string() + "'";
  return std::system(cmd.c_str());
}

TiktokenState synthetic(size_t n_ranks, size_t n_special, uint32_t seed) {
  std::mt19937 rng(seed);
  TiktokenState st{"rustbpe", kSplitPattern, {}, {}};
  for (size_t i = 0; i < n_ranks; i++) {
    size_t len = i % 97 == 5 ? 300 + rng() % 50 : 1 + rng() % 12;  // some tokens need BINBYTES
    std::string b(len, 0);
    for (auto& c : b) c = char(rng());
    b += std::to_string(i);                                            // unique
    st.mergeable_ranks.emplace_back(b, int32_t(i < 300 ? i : i * 3));  // ids past 65535 need BININT
  }
  for (size_t i = 0; i < n_special; i++)
    st.special_tokens.emplace_back("<|s" + std::to_string(i) + "|>", int32_t(n_ranks * 3 + i));
  return st;
}

}  // namespace

TEST(TokenizerPklPython, WriterMatchesCPythonPickler) {
  if (!have_python()) GTEST_SKIP() << "/usr/bin/python3 not installed";
  fs::path dir = temp_dir("pkl");
  std::vector<fs::path> files;
  size_t sizes[][2] = {{1, 1}, {2, 0}, {999, 9}, {1000, 9}, {1001, 1000}, {2000, 9}, {12345, 9}, {40000, 2}};
  for (auto [n, s] : sizes) {
    fs::path f = dir / ("t" + std::to_string(n) + "_" + std::to_string(s) + ".pkl");
    write_file_atomic(f, write_tokenizer_pkl(synthetic(n, s, uint32_t(n))));
    files.push_back(f);
  }
  // Frames that fill up right around a batch's SETITEMS/MARK: 2500 items of 65 bytes each after a name of
  // 430..480 bytes puts the 64 KiB mark on every byte near the end of the first batch.
  for (int nl = 430; nl < 480; nl++) {
    TiktokenState st{std::string(size_t(nl), 'n'), "p", {}, {{"<|a|>", 5000}}};
    for (int i = 0; i < 2500; i++) st.mergeable_ranks.emplace_back(fmt::format("{:059d}", i), 256 + i);
    fs::path f = dir / fmt::format("sweep{}.pkl", nl);
    write_file_atomic(f, write_tokenizer_pkl(st));
    files.push_back(f);
  }
  // The full cl100k vocabulary: ~1.6 MB of pickle, many 64 KiB frames.
  const Tokenizer& cl = tok_test::cl100k(false);
  fs::path f = dir / "cl100k.pkl";
  write_file_atomic(f, cl.to_pkl_bytes());
  files.push_back(f);
  EXPECT_EQ(run_python_check(files), 0);
  fs::remove_all(dir);
}

TEST(TokenizerPklPython, LoadedStateEqualsOurs) {
  if (!have_python()) GTEST_SKIP() << "/usr/bin/python3 not installed";
  fs::path dir = temp_dir("state");
  std::vector<std::string> docs;
  for (const auto& row : tok_test::read_jsonl(tok_test::fixture("parquet/pretrain/shard_00000.expected.jsonl")))
    docs.push_back(row["text"]);
  Tokenizer tok = train_tokenizer(docs, 400);
  tok.save(dir);
  ASSERT_EQ(run_python_check({dir / "tokenizer.pkl"}, dir / "state.json"), 0);
  auto j = nlohmann::json::parse(read_file(dir / "state.json"));
  EXPECT_EQ(j["name"], "rustbpe");
  EXPECT_EQ(j["pat_str"], kSplitPattern);
  ASSERT_EQ(j["mergeable_ranks"].size(), tok.mergeable_ranks().size());
  for (size_t i = 0; i < tok.mergeable_ranks().size(); i++) {
    const auto& [bytes, rank] = tok.mergeable_ranks()[i];
    std::string hex;
    for (unsigned char c : bytes) hex += fmt::format("{:02x}", c);
    EXPECT_EQ(j["mergeable_ranks"][i][0], hex);
    EXPECT_EQ(j["mergeable_ranks"][i][1], rank);
  }
  ASSERT_EQ(j["special_tokens"].size(), kSpecialTokens.size());
  for (size_t i = 0; i < kSpecialTokens.size(); i++) {
    EXPECT_EQ(j["special_tokens"][i][0], kSpecialTokens[i]);
    EXPECT_EQ(j["special_tokens"][i][1], 391 + int(i));
  }
  fs::remove_all(dir);
}
