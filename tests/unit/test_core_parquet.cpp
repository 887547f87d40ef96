// Parquet reader and writer: fixture files written by arrow-rs, writer round trips, and a fuzz test (random
// truncations and byte flips of the fixtures must only ever throw nanochat::Error).
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/formats/parquet.h"

using namespace nanochat;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kParquet = fs::path(NANOCHAT_FIXTURES) / "parquet";

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> rows;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(json::parse(line));
  return rows;
}

std::vector<json> read_all_rows(const ParquetFile& pf, const std::vector<std::string>& cols = {}) {
  std::vector<json> rows;
  for (int rg = 0; rg < pf.num_row_groups(); rg++)
    for (auto& r : pf.read_rows(rg, cols)) rows.push_back(std::move(r));
  return rows;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("nanochat_test_{}_{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Parquet, PretrainShardsFastPath) {
  for (int i = 0; i < 3; i++) {
    fs::path base = kParquet / "pretrain" / fmt::format("shard_{:05d}", i);
    ParquetFile pf(base.string() + ".parquet");
    auto want = read_jsonl(base.string() + ".expected.jsonl");
    EXPECT_EQ(pf.num_rows(), int64_t(want.size()));
    EXPECT_EQ(pf.column_names(), std::vector<std::string>{"text"});
    size_t k = 0;
    for (int rg = 0; rg < pf.num_row_groups(); rg++) {
      auto texts = pf.read_strings(rg, "text");
      EXPECT_EQ(int64_t(texts.size()), pf.row_group_num_rows(rg));
      EXPECT_LE(texts.size(), 64u);
      for (const auto& t : texts) ASSERT_EQ(t, want.at(k++)["text"].get<std::string>());
    }
    EXPECT_EQ(k, want.size());
  }
}

TEST(Parquet, VariantsAndNestedTasks) {
  auto want = read_jsonl(kParquet / "variants" / "expected.jsonl");
  for (const char* v : {"snappy_dict_v1", "gzip_v2", "none_v1_stats", "zstd_dict_v2"}) {
    ParquetFile pf(kParquet / "variants" / (std::string(v) + ".parquet"));
    EXPECT_EQ(read_all_rows(pf), want) << v;
  }
  for (const char* t : {"smoltalk_train", "mmlu_test", "arc_easy_test"}) {
    ParquetFile pf(kParquet / "tasks" / (std::string(t) + ".parquet"));
    EXPECT_EQ(read_all_rows(pf), read_jsonl(kParquet / "tasks" / (std::string(t) + ".expected.jsonl"))) << t;
  }
  for (const char* t : {"types_snappy_dict_v1", "types_zstd_v2"}) {
    ParquetFile pf(kParquet / "types" / (std::string(t) + ".parquet"));
    EXPECT_EQ(read_all_rows(pf), read_jsonl(kParquet / "types" / "types.expected.jsonl")) << t;
  }
  ParquetFile mmlu(kParquet / "tasks" / "mmlu_test.parquet");
  auto rows = mmlu.read_rows(0, {"choices", "answer"});
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].size(), 2u);
  EXPECT_TRUE(rows[0]["choices"].is_array());
  EXPECT_TRUE(rows[0]["answer"].is_number_integer());
}

TEST(Parquet, ClearErrors) {
  ParquetFile mmlu(kParquet / "tasks" / "mmlu_test.parquet");
  EXPECT_THROW(mmlu.read_strings(0, "choices"), Error);  // nested: not a flat string column
  EXPECT_THROW(mmlu.read_strings(0, "missing"), Error);
  EXPECT_THROW(mmlu.read_rows(mmlu.num_row_groups()), Error);
  try {
    ParquetFile nope("/nonexistent/x.parquet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.parquet"), std::string::npos);
  }
}

TEST(Parquet, WriterRoundTrip) {
  fs::path dir = temp_dir("pqwriter");
  std::vector<std::string> docs;
  std::mt19937 rng(1);
  for (int i = 0; i < 200; i++) {
    std::string d = fmt::format("doc {} ünïcödé 🦙 ", i);
    d.append(rng() % 300, char('a' + i % 26));
    docs.push_back(i % 17 == 0 ? std::string() : d);
  }
  docs.push_back(std::string(3 << 20, 'z'));  // a document larger than one page
  docs.push_back("last");
  write_parquet_strings(dir / "out.parquet", "text", docs, 7);
  EXPECT_FALSE(fs::exists(dir / "out.parquet.tmp"));
  ParquetFile pf(dir / "out.parquet");
  EXPECT_EQ(pf.num_rows(), int64_t(docs.size()));
  EXPECT_EQ(pf.num_row_groups(), int((docs.size() + 6) / 7));
  std::vector<std::string> back;
  for (int rg = 0; rg < pf.num_row_groups(); rg++) {
    auto t = pf.read_strings(rg, "text");
    back.insert(back.end(), t.begin(), t.end());
  }
  EXPECT_EQ(back, docs);
  auto rows = read_all_rows(pf);
  ASSERT_EQ(rows.size(), docs.size());
  EXPECT_EQ(rows[3]["text"], docs[3]);

  // An empty file (no row groups) is still a valid parquet file.
  write_parquet_strings(dir / "empty.parquet", "text", {}, 1024);
  ParquetFile empty(dir / "empty.parquet");
  EXPECT_EQ(empty.num_rows(), 0);
  EXPECT_EQ(empty.num_row_groups(), 0);

  // An unfinished writer leaves nothing behind under either name.
  {
    ParquetStringWriter w(dir / "unfinished.parquet", "text");
    w.write_row_group({"a", "b"});
  }
  EXPECT_FALSE(fs::exists(dir / "unfinished.parquet"));
  EXPECT_FALSE(fs::exists(dir / "unfinished.parquet.tmp"));
  fs::remove_all(dir);
}

// Random truncations and byte flips of every fixture: reading must give rows or throw nanochat::Error — never
// crash, hang, or throw anything else. Flips favour the footer and page headers, where the structure lives.
TEST(Parquet, FuzzCorruptFilesOnlyThrowError) {
  std::vector<fs::path> files;
  for (const char* sub : {"tasks", "variants", "pretrain", "types"})
    for (const auto& e : fs::directory_iterator(kParquet / sub))
      if (e.path().extension() == ".parquet") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 12u);
  fs::path dir = temp_dir("pqfuzz");
  fs::path target = dir / "fuzzed.parquet";
  std::mt19937_64 rng(12345);
  int iterations = 0, errors = 0, readable = 0;
  for (int it = 0; it < 3000; it++) {
    const fs::path& src = files[size_t(it) % files.size()];
    std::string bytes = read_file(src);
    int mode = int(rng() % 4);
    if (mode == 0) {  // truncate anywhere
      bytes.resize(rng() % bytes.size());
    } else {  // flip 1-8 bytes: in the footer, near the start (page headers), or anywhere
      int flips = 1 + int(rng() % 8);
      for (int f = 0; f < flips; f++) {
        size_t n = bytes.size(), pos;
        if (mode == 1)
          pos = n - 1 - rng() % std::min<size_t>(n, 2048);
        else if (mode == 2)
          pos = rng() % std::min<size_t>(n, 512);
        else
          pos = rng() % n;
        bytes[pos] = char(uint8_t(bytes[pos]) ^ uint8_t(1 + rng() % 255));
      }
    }
    {
      std::ofstream out(target, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), std::streamsize(bytes.size()));
    }
    iterations++;
    try {
      ParquetFile pf(target);
      for (int rg = 0; rg < pf.num_row_groups(); rg++) {
        pf.read_rows(rg);
        auto names = pf.column_names();
        if (names.size() == 1) {
          try {
            pf.read_strings(rg, names[0]);
          } catch (const Error&) {}
        }
      }
      readable++;
    } catch (const Error& e) {
      errors++;
      ASSERT_NE(std::string(e.what()).find("fuzzed.parquet"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << it << " (" << src.filename() << ", mode " << mode
             << ") threw a non-Error: " << e.what();
    }
  }
  EXPECT_EQ(iterations, 3000);
  EXPECT_GT(errors, 1000);  // most corruptions must be detected
  fs::remove_all(dir);
  std::printf("fuzz: %d iterations, %d errors, %d still readable\n", iterations, errors, readable);
}
