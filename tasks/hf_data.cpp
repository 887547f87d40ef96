// tasks/hf_data: see hf_data.h.
#include "tasks/hf_data.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

#include "nanochat/common.h"
#include "nanochat/download.h"
#include "nanochat/formats/parquet.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> parquet_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".parquet") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

void download_split(const std::string& repo, const std::string& subset, const std::string& split, const fs::path& dir) {
  const std::string api = fmt::format("{}/api/datasets/{}/parquet/{}/{}", hf_endpoint(), repo, subset, split);
  auto log = [](const std::string& line) { print0(line); };
  std::vector<std::string> urls;
  try {
    const fs::path listing = dir / "listing.json";
    download_file(api, listing, 5, 30, log);
    urls = nlohmann::json::parse(read_file(listing)).get<std::vector<std::string>>();
    fs::remove(listing);
    if (urls.empty()) fail("the listing is empty");
    for (size_t i = 0; i < urls.size(); i++) {
      print0f("Downloading {} {}/{} file {}/{}...", repo, subset, split, i + 1, urls.size());
      download_file(urls[i], dir / fmt::format("{:04d}.parquet", i), 5, 30, log);  // names keep the listing's order
    }
  } catch (const std::exception& e) {
    fail("cannot download {} {}/{} ({}); put its parquet files in {} (their list is at {})", repo, subset, split,
         e.what(), dir.string(), api);
  }
}

}  // namespace

std::string hf_endpoint() {
  std::string e = getenv_or("HF_ENDPOINT", "https://huggingface.co");
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

fs::path hf_split_dir(const std::string& repo, const std::string& subset, const std::string& split) {
  return get_base_dir() / "hf_datasets" / repo / subset / split;
}

ShuffledRows load_hf_split(const std::string& repo, const std::string& subset, const std::string& split) {
  const fs::path dir = hf_split_dir(repo, subset, split);
  if (parquet_files(dir).empty()) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail("cannot create {}: {}", dir.string(), ec.message());
    // One process downloads; the others (other ranks) wait on the lock and then find the files.
    int lock = open((dir / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock < 0) fail("cannot create the lock file in {}", dir.string());
    flock(lock, LOCK_EX);
    try {
      if (parquet_files(dir).empty()) download_split(repo, subset, split, dir);
    } catch (...) {
      close(lock);
      throw;
    }
    close(lock);
  }
  std::vector<std::string> rows;
  for (const auto& file : parquet_files(dir)) {
    ParquetFile pf(file);
    for (int rg = 0; rg < pf.num_row_groups(); rg++)
      for (auto& row : pf.read_rows(rg))
        rows.push_back(row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return ShuffledRows(std::move(rows));
}

}  // namespace nanochat
