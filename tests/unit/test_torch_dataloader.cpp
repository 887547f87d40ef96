// Dataloaders. Pretraining: batches equal a plain single-threaded transcription of nanochat's best-fit loop (the
// oracle below), every row starts with BOS, nothing is padded, only a row's last document can be cropped and only
// when no buffered document fits, the output is deterministic across thread counts, resuming from a saved state
// gives what nanochat's resume gives, and two ranks read disjoint row groups. SFT: best fit with BOS padding and
// the target masking rules.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "nanochat/common.h"
#include "nanochat/dataloader.h"
#include "nanochat/formats/parquet.h"

using namespace nanochat;
namespace fs = std::filesystem;

namespace {

constexpr int kBos = 256;  // byte-level test tokenizer: token = byte value, BOS = 256

std::vector<std::vector<int>> byte_encode(const std::vector<std::string>& texts) {
  std::vector<std::vector<int>> out;
  for (const auto& t : texts) {
    std::vector<int> ids;
    for (unsigned char c : t) ids.push_back(c);
    out.push_back(std::move(ids));
  }
  return out;
}

// Documents "<file>:<rg>:<i>|" + filler of random length (1..150 bytes in all), 6 row groups of 40 per file.
struct Shards {
  fs::path dir;
  std::vector<fs::path> train;
  Shards() {
    dir = fs::temp_directory_path() / fmt::format("nanochat_test_loader_{}", ::getpid());
    fs::remove_all(dir);
    std::mt19937 rng(7);
    for (int f = 0; f < 3; f++) {
      fs::path p = dir / index_to_filename(f);
      ParquetStringWriter w(p, "text");
      for (int rg = 0; rg < 6; rg++) {
        std::vector<std::string> docs;
        for (int i = 0; i < 40; i++) {
          std::string d = fmt::format("{}:{}:{}|", f, rg, i);
          d.append(rng() % 140, char('a' + rng() % 26));
          docs.push_back(d);
        }
        w.write_row_group(docs);
      }
      w.finish();
      if (f < 2) train.push_back(p);
    }
  }
  ~Shards() { fs::remove_all(dir); }
};

// nanochat's loop, transcribed plainly: refill the buffer one slice at a time, best fit, else crop the shortest.
struct Oracle {
  DocumentBatches docs;
  std::vector<std::vector<int64_t>> buf;
  DataState state{0, 0, 1};
  size_t buffer_size;
  Oracle(const std::vector<fs::path>& files, int rank, int ws, size_t bs, std::optional<DataState> resume = {})
      : docs(files, rank, ws, 128, resume), buffer_size(bs) {}
  std::pair<torch::Tensor, DataState> next(int B, int T) {
    torch::Tensor rows = torch::empty({B, T + 1}, torch::kLong);
    for (int b = 0; b < B; b++) {
      int64_t pos = 0;
      while (pos < T + 1) {
        while (buf.size() < buffer_size) {
          auto s = docs.next();
          state = s.state;
          for (auto& ids : byte_encode(s.docs)) {
            std::vector<int64_t> d{kBos};
            d.insert(d.end(), ids.begin(), ids.end());
            buf.push_back(d);
          }
        }
        int64_t remaining = T + 1 - pos, best = -1, best_len = 0;
        for (size_t i = 0; i < buf.size(); i++)
          if (int64_t(buf[i].size()) <= remaining && int64_t(buf[i].size()) > best_len)
            best = int64_t(i), best_len = int64_t(buf[i].size());
        if (best < 0) {
          best = 0;
          for (size_t i = 0; i < buf.size(); i++)
            if (buf[i].size() < buf[size_t(best)].size()) best = int64_t(i);
        }
        auto& d = buf[size_t(best)];
        int64_t n = std::min<int64_t>(int64_t(d.size()), remaining);
        for (int64_t k = 0; k < n; k++) rows[b][pos + k] = d[size_t(k)];
        pos += n;
        buf.erase(buf.begin() + best);
      }
    }
    return {rows, state};
  }
};

torch::Tensor full_rows(const PretrainBatch& b) {
  return torch::cat({b.inputs, b.targets.narrow(1, b.targets.size(1) - 1, 1)}, 1);
}

bool same_state(const DataState& a, const DataState& b) {
  return a.pq_idx == b.pq_idx && a.rg_idx == b.rg_idx && a.epoch == b.epoch;
}

}  // namespace

TEST(DataLoader, MatchesNanochatPackingAndRules) {
  Shards s;
  const int B = 4, T = 64;
  DataLoader loader(byte_encode, kBos, B, T, "train", torch::kCPU, 0, 1, std::nullopt, s.train, 4, 128, 50);
  Oracle oracle(s.train, 0, 1, 50);
  std::set<std::string> all_docs;
  for (auto& f : s.train) {
    ParquetFile pf(f);
    for (int rg = 0; rg < pf.num_row_groups(); rg++)
      for (auto& d : pf.read_strings(rg, "text")) all_docs.insert(d);
  }
  int cropped_rows = 0;
  for (int step = 0; step < 30; step++) {
    PretrainBatch b = loader.next();
    ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{B, T}));
    ASSERT_EQ(b.inputs.dtype(), torch::kLong);
    ASSERT_EQ(b.targets.dtype(), torch::kLong);
    ASSERT_TRUE(torch::equal(b.inputs.narrow(1, 1, T - 1), b.targets.narrow(1, 0, T - 1)));
    auto [want, want_state] = oracle.next(B, T);
    ASSERT_TRUE(torch::equal(full_rows(b), want)) << "batch " << step;
    EXPECT_TRUE(same_state(b.state, want_state)) << step;
    torch::Tensor rows = full_rows(b);
    for (int r = 0; r < B; r++) {
      torch::Tensor row = rows[r];
      auto acc = row.accessor<int64_t, 1>();
      ASSERT_EQ(acc[0], kBos) << "row does not start with BOS";
      // Split the row at BOS tokens into documents: all but the last must be whole documents.
      std::vector<std::string> segs;
      for (int64_t k = 0; k < T + 1; k++) {
        ASSERT_GE(acc[k], 0);  // no padding
        ASSERT_LE(acc[k], kBos);
        if (acc[k] == kBos)
          segs.emplace_back();
        else
          segs.back().push_back(char(acc[k]));
      }
      for (size_t k = 0; k + 1 < segs.size(); k++) ASSERT_TRUE(all_docs.count(segs[k])) << "cropped inside a row";
      if (!all_docs.count(segs.back())) cropped_rows++;
    }
  }
  EXPECT_GT(cropped_rows, 0);  // with T=64 and documents up to 150 bytes, cropping must happen
}

TEST(DataLoader, DeterministicAcrossThreadCounts) {
  Shards s;
  DataLoader a(byte_encode, kBos, 3, 32, "train", torch::kCPU, 0, 1, std::nullopt, s.train, 1, 128, 40, 1);
  DataLoader b(byte_encode, kBos, 3, 32, "train", torch::kCPU, 0, 1, std::nullopt, s.train, 4, 128, 40, 4);
  for (int i = 0; i < 40; i++) {  // long enough to wrap into the second epoch
    auto x = a.next(), y = b.next();
    ASSERT_TRUE(torch::equal(x.inputs, y.inputs)) << i;
    ASSERT_TRUE(same_state(x.state, y.state)) << i;
  }
}

TEST(DataLoader, ResumeFromSavedState) {
  Shards s;
  const int B = 2, T = 48;
  DataLoader first(byte_encode, kBos, B, T, "train", torch::kCPU, 0, 1, std::nullopt, s.train, 2, 128, 30);
  DataState saved;
  for (int i = 0; i < 12; i++) saved = first.next().state;
  ASSERT_GT(saved.rg_idx, 0);
  // nanochat resumes with an empty buffer at the row group after the saved one.
  DataLoader resumed(byte_encode, kBos, B, T, "train", torch::kCPU, 0, 1, saved, s.train, 2, 128, 30);
  Oracle oracle(s.train, 0, 1, 30, saved);
  for (int i = 0; i < 10; i++) {
    auto b = resumed.next();
    auto [want, st] = oracle.next(B, T);
    ASSERT_TRUE(torch::equal(full_rows(b), want)) << i;
    EXPECT_TRUE(same_state(b.state, st));
  }
  // The first documents after resuming come from the row group after the saved one.
  auto b = DataLoader(byte_encode, kBos, 1, 8, "train", torch::kCPU, 0, 1, saved, s.train, 1, 128, 1).next();
  std::string head;
  for (int k = 1; k < 8; k++) head.push_back(char(b.inputs[0][k].item<int64_t>()));
  EXPECT_EQ(head.rfind(fmt::format("{}:{}:", saved.pq_idx, saved.rg_idx + 1), 0), 0u) << head;
}

TEST(DataLoader, RanksReadDisjointRowGroups) {
  Shards s;
  for (int rank = 0; rank < 2; rank++) {
    DataLoader loader(byte_encode, kBos, 2, 64, "train", torch::kCPU, rank, 2, std::nullopt, s.train, 2, 128, 20);
    int checked = 0;
    for (int i = 0; i < 10; i++) {
      auto b = loader.next();
      EXPECT_EQ(b.state.rg_idx % 2, rank);
      torch::Tensor rows = full_rows(b);
      for (int r = 0; r < 2; r++) {
        std::string text;
        for (int64_t k = 0; k < 65; k++) {
          int64_t t = rows[r][k].item<int64_t>();
          text.push_back(t == kBos ? '\n' : char(t));
        }
        // Every document's "<file>:<rg>:<i>|" header names a row group of this rank.
        size_t p = 0;
        while ((p = text.find('\n', p)) != std::string::npos) {
          size_t bar = text.find('|', p);
          size_t next_doc = text.find('\n', p + 1);
          if (bar != std::string::npos && (next_doc == std::string::npos || bar < next_doc)) {
            int f, rg, d;
            ASSERT_EQ(std::sscanf(text.c_str() + p + 1, "%d:%d:%d|", &f, &rg, &d), 3);
            EXPECT_EQ(rg % 2, rank) << text;
            checked++;
          }
          p++;
        }
      }
    }
    EXPECT_GT(checked, 20);
  }
}

TEST(DataLoader, ErrorsSurfaceInNext) {
  Shards s;
  auto bad = [](const std::vector<std::string>&) -> std::vector<std::vector<int>> { fail("tokenizer exploded"); };
  DataLoader loader(bad, kBos, 1, 16, "train", torch::kCPU, 0, 1, std::nullopt, s.train);
  EXPECT_THROW(loader.next(), Error);
  EXPECT_THROW(DataLoader(byte_encode, kBos, 0, 16, "train", torch::kCPU, 0, 1, std::nullopt, s.train), Error);
}

// ---------------------------------------------------------------------------------------------------------------------
// SFT

namespace {
// Conversation i: BOS then i%7+2 tokens of value 1000+i; mask 1 on the second half.
TokenizedConversation conv(int64_t i, int64_t long_every = 0) {
  TokenizedConversation c;
  int64_t n = (long_every && i % long_every == 0) ? 100 : i % 7 + 3;
  for (int64_t k = 0; k < n; k++) {
    c.ids.push_back(k == 0 ? kBos : int(1000 + i));
    c.mask.push_back(k >= n / 2 ? 1 : 0);
  }
  return c;
}
}  // namespace

TEST(SftLoader, BestFitWithPadding) {
  const int B = 3, T = 16;
  int64_t size = 50;
  SftDataLoader loader(
      size, [](int64_t i) { return conv(i); }, kBos, B, T, true, 0, torch::kCPU, 0, 1, 8);
  std::set<int64_t> seen;
  bool last = false;
  int steps = 0;
  while (!last && steps < 100) {
    SftBatch b = loader.next();
    steps++;
    ASSERT_EQ(b.inputs.dtype(), torch::kInt);
    ASSERT_EQ(b.targets.dtype(), torch::kLong);
    ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{B, T}));
    for (int r = 0; r < B; r++) {
      ASSERT_EQ(b.inputs[r][0].item<int>(), kBos);
      // Reconstruct the row: conversations are runs of one value after a BOS; then BOS padding.
      int64_t k = 0, content = 0;
      while (k < T) {
        int v = (k + 1 < T) ? b.inputs[r][k + 1].item<int>() : -1;
        if (b.inputs[r][k].item<int>() != kBos || v == kBos || v < 0) break;
        int64_t id = v - 1000, n = id % 7 + 3;
        seen.insert(id);
        for (int64_t j = 1; j < n && k + j < T; j++) ASSERT_EQ(b.inputs[r][k + j].item<int>(), v);
        // targets: the mask of the next position (mask 1 on the second half)
        for (int64_t j = 0; j < n && k + j < T; j++) {
          int64_t want = (j + 1 < n) ? ((j + 1) >= n / 2 ? v : -1) : -2;  // -2: next conversation's BOS
          if (want != -2) ASSERT_EQ(b.targets[r][k + j].item<int64_t>(), want) << r << " " << k + j;
        }
        k += n;
        content = k;
      }
      if (content < T + 1) {
        for (int64_t j = content; j < T; j++) ASSERT_EQ(b.inputs[r][j].item<int>(), kBos);  // BOS padding
        for (int64_t j = std::max<int64_t>(content - 1, 0); j < T; j++) ASSERT_EQ(b.targets[r][j].item<int64_t>(), -1);
      }
    }
    last = b.last_step;
    EXPECT_GT(b.approx_progress, 0);
  }
  EXPECT_TRUE(last);  // one epoch of consumption ends the run
  EXPECT_GE(seen.size(), 45u);
}

TEST(SftLoader, IterationsAndOverlongConversations) {
  // num_iterations: last_step after exactly that many batches, progress = it / num_iterations.
  SftDataLoader a(
      1000, [](int64_t i) { return conv(i); }, kBos, 2, 32, true, 3, torch::kCPU);
  EXPECT_FALSE(a.next().last_step);
  auto b2 = a.next();
  EXPECT_FALSE(b2.last_step);
  EXPECT_NEAR(b2.approx_progress, 2.0 / 3.0, 1e-12);
  EXPECT_TRUE(a.next().last_step);
  // Conversations longer than a row never fit: they stay buffered and rows around them are padded.
  SftDataLoader c(
      40, [](int64_t i) { return conv(i, 5); }, kBos, 2, 16, false, 0, torch::kCPU, 0, 1, 10);
  for (int i = 0; i < 5; i++) {
    auto b = c.next();
    EXPECT_FALSE(b.last_step);  // the val split never sets last_step
    EXPECT_LT(b.inputs.max().item<int>(), 1000 + 40);
    for (int r = 0; r < 2; r++)
      for (int k = 0; k < 16; k++) EXPECT_NE(b.inputs[r][k].item<int>() - 1000, 0);  // conversation 0 is 100 long
  }
}
