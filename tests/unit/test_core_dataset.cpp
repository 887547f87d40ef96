// Dataset: shard listing and the train/val split, the document stream's DDP striding and resume semantics
// (nanochat's _document_batches), parquets_iter_batched, and building shards from local text.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "nanochat/common.h"
#include "nanochat/dataset.h"
#include "nanochat/formats/parquet.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / fmt::format("nanochat_test_{}_{}", name, ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string doc_name(int f, int rg, int i) { return fmt::format("f{}r{}d{}", f, rg, i); }

// `nfiles` shards of `nrg` row groups with `per_rg` documents each, named by doc_name.
std::vector<fs::path> make_shards(const fs::path& dir, int nfiles, int nrg, int per_rg) {
  std::vector<fs::path> files;
  for (int f = 0; f < nfiles; f++) {
    files.push_back(dir / index_to_filename(f));
    ParquetStringWriter w(files.back(), "text");
    for (int rg = 0; rg < nrg; rg++) {
      std::vector<std::string> docs;
      for (int i = 0; i < per_rg; i++) docs.push_back(doc_name(f, rg, i));
      w.write_row_group(docs);
    }
    w.finish();
  }
  return files;
}

struct Pos {
  int64_t pq, rg, epoch;
  bool operator==(const Pos&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Pos& p) {
  return os << "(" << p.pq << "," << p.rg << "," << p.epoch << ")";
}

Pos pos_of(const DocumentBatches::Slice& s) { return {s.state.pq_idx, s.state.rg_idx, s.state.epoch}; }

}  // namespace

TEST(Dataset, ListingAndSplit) {
  fs::path base = temp_dir("dsbase");
  setenv("NANOCHAT_BASE_DIR", base.c_str(), 1);
  EXPECT_EQ(data_dir(), base / "base_data_climbmix");
  EXPECT_THROW(split_files("train"), Error);  // nothing there yet: a hint to download
  fs::create_directories(base / "base_data");
  EXPECT_EQ(data_dir(), base / "base_data");  // legacy fallback while base_data_climbmix does not exist
  make_shards(base / "base_data", 2, 1, 1);
  EXPECT_EQ(split_files("val").at(0).filename(), "shard_00001.parquet");
  fs::path dir = base / "base_data_climbmix";
  make_shards(dir, 3, 1, 2);
  std::ofstream(dir / "shard_00009.parquet.tmp") << "partial";
  std::ofstream(dir / "notes.txt") << "x";
  EXPECT_EQ(data_dir(), dir);
  setenv("NANOCHAT_DATA_DIR", (base / "mine").c_str(), 1);  // an explicit data directory wins
  EXPECT_EQ(data_dir(), base / "mine");
  unsetenv("NANOCHAT_DATA_DIR");
  auto all = list_parquet_files();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].filename(), "shard_00000.parquet");
  auto train = split_files("train"), val = split_files("val");
  ASSERT_EQ(train.size(), 2u);
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].filename(), "shard_00002.parquet");
  EXPECT_THROW(split_files("test"), Error);
  std::vector<std::string> seen;
  parquets_iter_batched("train", 0, 1, [&](std::vector<std::string>&& t) {
    seen.insert(seen.end(), t.begin(), t.end());
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"f0r0d0", "f0r0d1", "f1r0d0", "f1r0d1"}));
  unsetenv("NANOCHAT_BASE_DIR");
  fs::remove_all(base);
}

TEST(Dataset, IterBatchedStartStep) {
  fs::path dir = temp_dir("dsiter");
  make_shards(dir, 2, 5, 1);
  std::vector<std::string> got;
  parquets_iter_batched(
      "train", 1, 2,
      [&](std::vector<std::string>&& t) {
        got.push_back(t.at(0));
        return true;
      },
      dir);
  EXPECT_EQ(got, (std::vector<std::string>{"f0r1d0", "f0r3d0"}));
  fs::remove_all(dir);
}

TEST(Dataset, DocumentStreamSlicesAndRanks) {
  fs::path dir = temp_dir("dsstream");
  auto files = make_shards(dir, 2, 5, 3);
  // Rank 0 of 2, slices of 2 documents: row groups 0, 2, 4 of each file, each cut into [2 docs, 1 doc].
  DocumentBatches r0(files, 0, 2, 2);
  std::vector<Pos> want = {{0, 0, 1}, {0, 0, 1}, {0, 2, 1}, {0, 2, 1}, {0, 4, 1}, {0, 4, 1}, {1, 0, 1},
                           {1, 0, 1}, {1, 2, 1}, {1, 2, 1}, {1, 4, 1}, {1, 4, 1}, {0, 0, 2}};
  for (size_t k = 0; k < want.size(); k++) {
    auto s = r0.next();
    EXPECT_EQ(pos_of(s), want[k]) << k;
    EXPECT_EQ(s.docs.size(), k % 2 == 0 ? 2u : 1u);
    EXPECT_EQ(s.docs[0], doc_name(int(want[k].pq), int(want[k].rg), k % 2 == 0 ? 0 : 2));
  }
  // Two ranks read disjoint row groups, and together all of them, in one epoch.
  std::set<std::string> seen;
  size_t total = 0;
  for (int rank = 0; rank < 2; rank++) {
    DocumentBatches s(files, rank, 2, 128);
    for (;;) {
      auto sl = s.next();
      if (sl.state.epoch > 1) break;
      EXPECT_EQ(sl.state.rg_idx % 2, rank);
      for (auto& d : sl.docs) seen.insert(d), total++;
    }
  }
  EXPECT_EQ(total, 2u * 5u * 3u);
  EXPECT_EQ(seen.size(), total);
  // A rank with no row groups anywhere is an error, not an endless loop.
  DocumentBatches idle(files, 6, 8, 128);
  EXPECT_THROW(idle.next(), Error);
  fs::remove_all(dir);
}

// Resume semantics of nanochat's _document_batches: continue at the row group after the saved one
// (base = rg // ws + 1; rg = base * ws + rank), skipping to the next file when that is past the end.
TEST(Dataset, DocumentStreamResume) {
  fs::path dir = temp_dir("dsresume");
  auto files = make_shards(dir, 2, 5, 1);
  auto first = [&](int rank, int ws, DataState st) { return pos_of(DocumentBatches(files, rank, ws, 128, st).next()); };
  EXPECT_EQ(first(0, 2, {0, 2, 1}), (Pos{0, 4, 1}));
  EXPECT_EQ(first(1, 2, {0, 2, 1}), (Pos{1, 1, 1}));  // rg 5 is past the end: next file, its rank-1 row group
  EXPECT_EQ(first(1, 2, {0, 1, 1}), (Pos{0, 3, 1}));
  EXPECT_EQ(first(0, 1, {1, 3, 2}), (Pos{1, 4, 2}));
  EXPECT_EQ(first(0, 1, {1, 4, 3}), (Pos{0, 0, 4}));   // end of the last file: next epoch from file 0
  EXPECT_EQ(first(0, 1, {1, -1, 3}), (Pos{1, 0, 3}));  // rg_idx None: start the file at the rank's row group
  // The state of a slice, fed back, continues right after it (single rank: nothing skipped).
  DocumentBatches a(files, 0, 1, 128);
  std::vector<Pos> straight;
  for (int k = 0; k < 12; k++) straight.push_back(pos_of(a.next()));
  DocumentBatches b(files, 0, 1, 128, DataState{straight[5].pq, straight[5].rg, straight[5].epoch});
  for (int k = 6; k < 12; k++) EXPECT_EQ(pos_of(b.next()), straight[size_t(k)]) << k;
  // The resumed file is only special on the first pass: the next epoch reads it from the start.
  DocumentBatches c(files, 0, 1, 128, DataState{0, 3, 1});
  std::vector<Pos> got;
  for (int k = 0; k < 8; k++) got.push_back(pos_of(c.next()));
  EXPECT_EQ(got,
            (std::vector<Pos>{{0, 4, 1}, {1, 0, 1}, {1, 1, 1}, {1, 2, 1}, {1, 3, 1}, {1, 4, 1}, {0, 0, 2}, {0, 1, 2}}));
  fs::remove_all(dir);
}

TEST(Dataset, SplitParagraphs) {
  // Short text, or no limit: one piece.
  EXPECT_EQ(split_paragraphs("a\n\nb", 0), (std::vector<std::string>{"a\n\nb"}));
  EXPECT_EQ(split_paragraphs("a\n\nb", 100), (std::vector<std::string>{"a\n\nb"}));
  // Pieces close at blank lines before passing the limit; a paragraph longer than the limit stays whole; the
  // pieces put back together are the text.
  std::string text = "one one\n\ntwo\n\n\nthree three three three\nstill three\n\nfour\n";
  auto pieces = split_paragraphs(text, 12);
  EXPECT_EQ(pieces, (std::vector<std::string>{"one one\n\n", "two\n\n\n", "three three three three\nstill three\n\n",
                                              "four\n"}));
  std::string joined;
  for (auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  auto pieces2 = split_paragraphs(text, 20);
  EXPECT_EQ(pieces2.front(), "one one\n\ntwo\n\n\n");
  for (size_t i = 0; i + 1 < pieces2.size(); i++) EXPECT_TRUE(pieces2[i].ends_with("\n\n")) << i;
}

TEST(Dataset, BuildShardsFromText) {
  fs::path dir = temp_dir("dsfromtext");
  fs::create_directories(dir / "in" / "sub");
  std::ofstream(dir / "in" / "a.txt") << "first document\nwith two lines";
  std::ofstream(dir / "in" / "sub" / "b.txt") << "second ü🦙";
  std::ofstream(dir / "in" / "c.jsonl")
      << "{\"text\": \"third\"}\n\n{\"text\": \"fourth\", \"id\": 4}\n{\"text\": \"\"}\n";
  int n = build_shards_from_text({(dir / "in").string()}, dir / "out", 1000, 2);
  EXPECT_EQ(n, 2);  // small input still makes a train and a val shard
  std::vector<std::string> back;
  auto files = list_parquet_files(dir / "out");
  ASSERT_EQ(files.size(), 2u);
  for (auto& f : files) {
    ParquetFile pf(f);
    for (int rg = 0; rg < pf.num_row_groups(); rg++) {
      EXPECT_LE(pf.row_group_num_rows(rg), 2);
      for (auto& t : pf.read_strings(rg, "text")) back.push_back(t);
    }
  }
  // Directory files sorted: a.txt, c.jsonl (3 docs, blank line skipped), sub/b.txt.
  EXPECT_EQ(back, (std::vector<std::string>{"first document\nwith two lines", "third", "fourth", "", "second ü🦙"}));
  // More text than one shard holds makes more shards of about equal size.
  EXPECT_EQ(build_shards_from_text({(dir / "in").string()}, dir / "out3", 10, 1024), 5);
  EXPECT_THROW(build_shards_from_text({(dir / "in").string()}, dir / "out", 1000, 2), Error);  // already has shards
  std::ofstream(dir / "bad.jsonl") << "{\"text\": 1}\n";
  try {
    build_shards_from_text({(dir / "bad.jsonl").string()}, dir / "out2", 1000, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(build_shards_from_text({(dir / "in" / "a.txt").string()}, dir / "out2", 1000, 2), Error);  // 1 doc
  // --doc-chars: a long file becomes several documents, cut at blank lines.
  std::ofstream(dir / "long.txt") << "para one\n\npara two\n\npara three";
  EXPECT_EQ(build_shards_from_text({(dir / "long.txt").string()}, dir / "out4", 1000, 8, 12), 2);
  back.clear();
  for (auto& f : list_parquet_files(dir / "out4")) {
    ParquetFile pf(f);
    for (int rg = 0; rg < pf.num_row_groups(); rg++)
      for (auto& t : pf.read_strings(rg, "text")) back.push_back(t);
  }
  EXPECT_EQ(back, (std::vector<std::string>{"para one\n\n", "para two\n\n", "para three"}));
  fs::remove_all(dir);
}
