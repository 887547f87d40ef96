// nanochat dataset: get pretraining data (nanochat's `python -m nanochat.dataset`), plus two helpers.
//
//   nanochat dataset -n 8                       download train shards 0..7 and the validation shard 6542
//   nanochat dataset -n 8 -w 8 --base-url URL   ... from a mirror (also: env NANOCHAT_DATA_URL)
//   nanochat dataset --from-text notes/ a.jsonl build shards from your own text (last shard = validation)
//   nanochat dataset --from-text docs/ --doc-chars 1500   ... long files cut into ~1500-byte pieces at blank lines
//   nanochat dataset --cat FILE.parquet [--columns a,b] [--limit N]   print rows as JSON lines
//
// Shards go to $NANOCHAT_BASE_DIR/base_data_climbmix, or $NANOCHAT_DATA_DIR when set, or --output-dir.
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/dataset.h"
#include "nanochat/cli/flags.h"
#include "nanochat/formats/parquet.h"

using namespace nanochat;

namespace {

void cat_parquet(const std::string& file, const std::string& columns_csv, int64_t limit) {
  ParquetFile pf(file);
  std::vector<std::string> columns;
  std::stringstream ss(columns_csv);
  for (std::string c; std::getline(ss, c, ',');)
    if (!c.empty()) columns.push_back(c);
  int64_t printed = 0;
  std::string out;
  for (int rg = 0; rg < pf.num_row_groups() && (limit < 0 || printed < limit); rg++) {
    for (const auto& row : pf.read_rows(rg, columns)) {
      if (limit >= 0 && printed >= limit) break;
      out = row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out.push_back('\n');
      std::fwrite(out.data(), 1, out.size(), stdout);
      printed++;
    }
  }
  std::fflush(stdout);
}

}  // namespace

int dataset_main(int argc, char** argv) {
  int num_files = -1, num_workers = 4;
  std::string base_url = getenv_or("NANOCHAT_DATA_URL", kDataUrl);
  std::vector<std::string> from_text;
  std::string output_dir, cat, columns;
  int64_t limit = -1, shard_chars = 250'000'000, doc_chars = 0;
  int row_group_size = 1024;

  Flags app{"Download the pretraining shards, build shards from your own text, or print a parquet file",
            "nanochat dataset"};
  app.add_option("-n,--num-files", num_files,
                 "number of train shards to download (-1 = all); the val shard is always fetched");
  app.add_option("-w,--num-workers", num_workers, "parallel downloads");
  app.add_option("--base-url", base_url, "where the shards are served (env NANOCHAT_DATA_URL)");
  app.add_option("--from-text", from_text, "build shards from text files / .jsonl files (field \"text\") / directories")
      ->expected(1, -1);
  app.add_option("--shard-chars", shard_chars, "--from-text: about this many bytes of text per shard");
  app.add_option("--doc-chars", doc_chars,
                 "--from-text: cut documents longer than this many bytes into pieces at blank lines (0 = keep whole)");
  app.add_option("--row-group-size", row_group_size, "--from-text: documents per row group");
  app.add_option("--output-dir", output_dir, "where shards go (default: the data directory)");
  app.add_option("--cat", cat, "print the rows of this parquet file as JSON lines");
  app.add_option("--columns", columns, "--cat: comma-separated columns (default all)");
  app.add_option("--limit", limit, "--cat: print at most this many rows (-1 = all)");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;

  if (!cat.empty()) {
    cat_parquet(cat, columns, limit);
    return 0;
  }
  std::string env_dir = getenv_or("NANOCHAT_DATA_DIR", "");
  std::filesystem::path dir = !output_dir.empty() ? std::filesystem::path(output_dir)
                              : !env_dir.empty()  ? std::filesystem::path(env_dir)
                                                  : get_base_dir() / "base_data_climbmix";
  if (!from_text.empty()) {
    int n = build_shards_from_text(from_text, dir, shard_chars, row_group_size, doc_chars);
    fmt::print("Done! Wrote {} shards to {} (the last one is the validation split)\n", n, dir.string());
    return 0;
  }
  if (num_files < -1) fail("--num-files must be -1 (all) or a non-negative count, got {}", num_files);
  download_shards(num_files, num_workers, base_url, dir);
  return 0;
}
