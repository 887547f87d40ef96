// dataset: see dataset.h.
#include "nanochat/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/download.h"
#include "nanochat/formats/parquet.h"

namespace nanochat {

namespace fs = std::filesystem;

std::string index_to_filename(int index) { return fmt::format("shard_{:05d}.parquet", index); }

fs::path data_dir() {
  if (const char* v = std::getenv("NANOCHAT_DATA_DIR"); v && *v) return fs::path(v);
  fs::path base = get_base_dir();
  fs::path climbmix = base / "base_data_climbmix";
  fs::path legacy = base / "base_data";
  if (!fs::exists(climbmix) && fs::exists(legacy)) return legacy;
  return climbmix;
}

std::vector<fs::path> list_parquet_files(const fs::path& dir_in, bool warn_on_legacy) {
  fs::path dir = dir_in.empty() ? data_dir() : dir_in;
  if (dir_in.empty() && warn_on_legacy && dir.filename() == "base_data") {
    print0(
        "┌──────────────────────────────────────────────────────────────────────────┐\n"
        "│ DATASET UPGRADE REQUIRED                                                 │\n"
        "│ Using the legacy FineWeb-Edu shards in base_data/. nanochat now trains   │\n"
        "│ on ClimbMix (base_data_climbmix/). To upgrade, run:                      │\n"
        "│   nanochat dataset -n 170      (download ClimbMix shards)                │\n"
        "│   nanochat tok_train           (retrain the tokenizer on them)           │\n"
        "└──────────────────────────────────────────────────────────────────────────┘");
  }
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() > 8 && name.ends_with(".parquet")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> split_files(const std::string& split, const fs::path& dir, bool warn_on_legacy) {
  if (split != "train" && split != "val") fail("split must be 'train' or 'val', got '{}'", split);
  auto files = list_parquet_files(dir, warn_on_legacy);
  fs::path where = dir.empty() ? data_dir() : dir;
  if (files.empty())
    fail(
        "no dataset parquet files in {}; download some with `nanochat dataset -n 8` or build them from your own text "
        "with `nanochat dataset --from-text PATH`",
        where.string());
  if (files.size() < 2)
    fail(
        "only one parquet file in {}: need at least 2 (the last one is the validation split); "
        "download more with `nanochat dataset -n 8`",
        where.string());
  if (split == "train")
    files.pop_back();
  else
    files.erase(files.begin(), files.end() - 1);
  return files;
}

void parquets_iter_batched(const std::string& split, int start, int step,
                           const std::function<bool(std::vector<std::string>&&)>& f, const fs::path& dir) {
  if (start < 0 || step < 1) fail("parquets_iter_batched: need start >= 0 and step >= 1");
  for (const auto& path : split_files(split, dir)) {
    ParquetFile pf(path);
    for (int rg = start; rg < pf.num_row_groups(); rg += step)
      if (!f(pf.read_strings(rg, "text"))) return;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// DocumentBatches

DocumentBatches::DocumentBatches(std::vector<fs::path> files, int rank, int world_size, int batch_size,
                                 std::optional<DataState> resume)
    : files_(std::move(files)), rank_(rank), ws_(world_size), batch_size_(batch_size) {
  if (files_.empty()) fail("no parquet files to read documents from");
  if (ws_ < 1 || rank_ < 0 || rank_ >= ws_) fail("bad rank {} for world size {}", rank_, ws_);
  if (batch_size_ < 1) fail("tokenizer batch size must be positive");
  resume_pq_ = resume ? resume->pq_idx : 0;
  if (resume && resume->rg_idx >= 0) resume_rg_ = resume->rg_idx;
  epoch_ = resume ? resume->epoch : 1;
  pq_idx_ = resume_pq_;
}

DocumentBatches::~DocumentBatches() = default;

DocumentBatches::Slice DocumentBatches::next() {
  for (;;) {
    if (rg_pos_ < rg_docs_.size()) {
      size_t end = std::min(rg_docs_.size(), rg_pos_ + size_t(batch_size_));
      Slice s;
      s.docs.assign(std::make_move_iterator(rg_docs_.begin() + long(rg_pos_)),
                    std::make_move_iterator(rg_docs_.begin() + long(end)));
      rg_pos_ = end;
      s.state = DataState{pq_idx_, cur_rg_, epoch_};
      yielded_this_pass_++;
      return s;
    }
    if (!file_open_) {
      if (pq_idx_ >= int64_t(files_.size())) {  // end of a pass over the files: next epoch
        bool resumed_pass = first_pass_ && (resume_pq_ != 0 || resume_rg_.has_value());
        if (yielded_this_pass_ == 0 && !resumed_pass)
          fail("rank {} of {} gets no documents: the {} parquet file(s) have fewer row groups than ranks", rank_, ws_,
               files_.size());
        first_pass_ = false;
        epoch_++;
        pq_idx_ = 0;
        yielded_this_pass_ = 0;
        continue;
      }
      pf_ = std::make_unique<ParquetFile>(files_[size_t(pq_idx_)]);
      if (first_pass_ && resume_rg_ && pq_idx_ == resume_pq_) {
        // Resume at the row group after the saved one (approximate: never repeats data, may skip some).
        int64_t base = *resume_rg_ / ws_ + 1;
        int64_t rg = base * ws_ + rank_;
        if (rg >= pf_->num_row_groups()) {
          pq_idx_++;
          continue;
        }
        resume_rg_.reset();
        rg_ = rg;
      } else {
        rg_ = rank_;
      }
      file_open_ = true;
    }
    if (rg_ < pf_->num_row_groups()) {
      rg_docs_ = pf_->read_strings(int(rg_), "text");
      rg_pos_ = 0;
      cur_rg_ = rg_;
      rg_ += ws_;
      continue;
    }
    file_open_ = false;
    pf_.reset();
    pq_idx_++;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Downloading

void download_shards(int num_files, int num_workers, const std::string& base_url, const fs::path& dir) {
  int num = (num_files < 0) ? kMaxShard : std::min(num_files, kMaxShard);
  std::vector<int> ids;
  for (int i = 0; i < num; i++) ids.push_back(i);
  ids.push_back(kMaxShard);  // the validation shard, always
  num_workers = std::max(1, num_workers);
  std::string url_base = base_url;
  while (!url_base.empty() && url_base.back() == '/') url_base.pop_back();
  fs::create_directories(dir);
  fmt::print("Downloading {} shards using {} workers...\nTarget directory: {}\n\n", ids.size(), num_workers,
             dir.string());
  std::fflush(stdout);

  const bool tty = ::isatty(fileno(stdout));
  std::mutex mu;
  std::atomic<size_t> next{0};
  int done = 0, ok = 0;
  int64_t bytes = 0;
  std::vector<std::string> failures;
  auto t0 = std::chrono::steady_clock::now();
  auto last_draw = t0;
  auto draw = [&](bool force) {  // call with mu held
    if (!tty) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw < std::chrono::milliseconds(100)) return;
    last_draw = now;
    double secs = std::max(1e-3, std::chrono::duration<double>(now - t0).count());
    int width = 30, filled = int(width * double(done) / double(ids.size()));
    fmt::print("\r[{}{}] {}/{} shards | {:.1f} MB | {:.1f} MB/s   ", std::string(size_t(filled), '#'),
               std::string(size_t(width - filled), '.'), done, ids.size(), bytes / 1e6, bytes / 1e6 / secs);
    std::fflush(stdout);
  };
  auto say = [&](const std::string& line) {  // call with mu held: a line above the bar
    if (tty) fmt::print("\r\033[K");
    fmt::print("{}\n", line);
    draw(true);
    std::fflush(stdout);
  };

  auto worker = [&] {
    for (size_t k; (k = next.fetch_add(1)) < ids.size();) {
      std::string name = index_to_filename(ids[k]);
      fs::path path = dir / name;
      if (fs::exists(path)) {
        std::lock_guard lk(mu);
        done++, ok++;
        say(fmt::format("Skipping {} (already exists)", path.string()));
        continue;
      }
      std::string url = url_base + "/" + name;
      if (!tty) {
        std::lock_guard lk(mu);
        say(fmt::format("Downloading {}...", name));
      }
      int64_t mine = 0;
      auto progress = [&](int64_t got, int64_t) {
        std::lock_guard lk(mu);
        bytes += got - mine;
        mine = got;
        draw(false);
      };
      auto log = [&](const std::string& line) {
        std::lock_guard lk(mu);
        say(line);
      };
      try {
        download_file(url, path, 5, 30, log, progress);
        std::lock_guard lk(mu);
        done++, ok++;
        if (!tty)
          say(fmt::format("Successfully downloaded {}", name));
        else
          draw(true);
      } catch (const Error& e) {
        std::lock_guard lk(mu);
        bytes -= mine;
        done++;
        failures.push_back(e.what());
        say(fmt::format("Failed to download {}: {}", name, e.what()));
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < std::min<int>(num_workers, int(ids.size())); w++) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (tty) fmt::print("\n");
  fmt::print("Done! Downloaded: {}/{} shards to {}\n", ok, ids.size(), dir.string());
  std::fflush(stdout);
  if (!failures.empty())
    fail("{} of {} shards could not be downloaded ({}); run the command again to retry the missing ones",
         failures.size(), ids.size(), failures.front());
}

// ---------------------------------------------------------------------------------------------------------------------
// Building shards from local text

namespace {

std::vector<fs::path> expand_paths(const std::vector<std::string>& paths) {
  std::vector<fs::path> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(p, ec))
        if (e.is_regular_file()) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.emplace_back(p);
    } else {
      fail("--from-text: {} is neither a file nor a directory", p);
    }
  }
  return files;
}

// Calls f(doc) for every document of the inputs, in order.
void for_each_doc(const std::vector<fs::path>& files, const std::function<void(std::string&&)>& f) {
  for (const auto& path : files) {
    if (path.extension() == ".jsonl") {
      std::ifstream in(path);
      if (!in) fail("cannot read {}", path.string());
      std::string line;
      for (int64_t lineno = 1; std::getline(in, line); lineno++) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
          fail("{}:{}: expected a JSON object with a string field \"text\"", path.string(), lineno);
        f(j["text"].get<std::string>());
      }
    } else {
      std::string text = read_file(path);
      if (!text.empty()) f(std::move(text));
    }
  }
}

}  // namespace

std::vector<std::string> split_paragraphs(const std::string& text, int64_t doc_chars) {
  if (doc_chars <= 0 || int64_t(text.size()) <= doc_chars) return {text};
  // Paragraph boundaries: just after each run of blank lines ("\n\n", "\n\n\n", ...).
  std::vector<std::string> pieces;
  std::string piece;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t gap = text.find("\n\n", pos);
    size_t end = gap == std::string::npos ? text.size() : text.find_first_not_of('\n', gap);
    if (end == std::string::npos) end = text.size();
    std::string_view para(text.data() + pos, end - pos);
    if (!piece.empty() && int64_t(piece.size() + para.size()) > doc_chars)
      pieces.push_back(std::move(piece)), piece.clear();
    piece.append(para);
    pos = end;
  }
  if (!piece.empty()) pieces.push_back(std::move(piece));
  return pieces;
}

int build_shards_from_text(const std::vector<std::string>& paths, const fs::path& dir, int64_t shard_chars,
                           int row_group_size, int64_t doc_chars) {
  if (shard_chars < 1 || row_group_size < 1) fail("--shard-chars and --row-group-size must be positive");
  auto existing = list_parquet_files(dir);
  if (!existing.empty())
    fail(
        "{} already holds {} parquet files; move them away first (mixing shards would change the validation split) "
        "or pass --output-dir",
        dir.string(), existing.size());
  auto files = expand_paths(paths);
  auto for_each_piece = [&](const std::function<void(std::string &&)>& f) {
    for_each_doc(files, [&](std::string&& d) {
      if (doc_chars <= 0 || int64_t(d.size()) <= doc_chars) return f(std::move(d));
      for (auto& p : split_paragraphs(d, doc_chars)) f(std::move(p));
    });
  };
  // Pass 1: document sizes, to cut the text into >= 2 shards of about equal size.
  std::vector<int64_t> sizes;
  for_each_piece([&](std::string&& d) { sizes.push_back(int64_t(d.size())); });
  if (sizes.size() < 2)
    fail("--from-text found {} documents; need at least 2 (one shard for training, one for validation)", sizes.size());
  int64_t total = 0;
  for (auto s : sizes) total += s;
  int64_t num_shards = std::clamp<int64_t>((total + shard_chars - 1) / shard_chars, 2, int64_t(sizes.size()));
  // boundaries[k] = index of the first document of shard k+1
  std::vector<size_t> ends;
  int64_t cum = 0;
  for (size_t i = 0; i < sizes.size() && int64_t(ends.size()) < num_shards - 1; i++) {
    cum += sizes[i];
    size_t docs_left = sizes.size() - (i + 1);
    size_t shards_left = size_t(num_shards) - ends.size() - 1;
    size_t in_shard = i + 1 - (ends.empty() ? 0 : ends.back());
    bool reached = double(cum) >= double(total) * double(ends.size() + 1) / double(num_shards);
    if ((reached && in_shard >= 1) || docs_left == shards_left) ends.push_back(i + 1);
  }
  ends.push_back(sizes.size());
  // Pass 2: write.
  fs::create_directories(dir);
  size_t doc = 0, shard = 0;
  std::vector<std::string> group;
  std::unique_ptr<ParquetStringWriter> w;
  auto open_shard = [&] { w = std::make_unique<ParquetStringWriter>(dir / index_to_filename(int(shard)), "text"); };
  open_shard();
  for_each_piece([&](std::string&& d) {
    group.push_back(std::move(d));
    doc++;
    bool shard_done = doc == ends[shard];
    if (int(group.size()) == row_group_size || shard_done) {
      w->write_row_group(group);
      group.clear();
    }
    if (shard_done) {
      w->finish();
      fmt::print("wrote {} ({} documents)\n", (dir / index_to_filename(int(shard))).string(),
                 ends[shard] - (shard ? ends[shard - 1] : 0));
      shard++;
      if (shard < ends.size()) open_shard();
    }
  });
  if (shard != ends.size()) fail("--from-text: the input files changed while reading them");
  return int(ends.size());
}

}  // namespace nanochat
