// dataset: the pretraining shards — where they live, the train/val split, iterating their documents by row group
// (with DDP striding and nanochat's approximate resume), downloading them, and building them from your own text.
//
//   auto files = nanochat::split_files("train");                    // all shards but the last
//   nanochat::parquets_iter_batched("val", 0, 1, [](std::vector<std::string>&& docs) { ...; return true; });
//   nanochat::DocumentBatches stream(files, rank, world_size);      // endless, 128-document slices
//
// Layout: <base_dir>/base_data_climbmix/shard_XXXXX.parquet; if that directory does not exist the legacy
// <base_dir>/base_data is used. NANOCHAT_DATA_DIR, when set, names the directory instead (e.g. shards built from your
// own text, kept apart from downloaded ClimbMix shards whose names they would share). The last shard by name is the
// validation split.
// Not covered: the tokenization and packing of documents (dataloader.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nanochat {

class ParquetFile;

constexpr int kMaxShard = 6542;  // shard_06542.parquet is the last one (and the validation shard)
inline const char* kDataUrl = "https://huggingface.co/datasets/karpathy/climbmix-400b-shuffle/resolve/main";

std::string index_to_filename(int index);  // shard_00042.parquet
// The data directory (see above). Not created.
std::filesystem::path data_dir();
// *.parquet files of a directory (not *.tmp), sorted by name. dir empty = data_dir(); with warn_on_legacy, printing
// the upgrade notice when the legacy directory is in use.
std::vector<std::filesystem::path> list_parquet_files(const std::filesystem::path& dir = {},
                                                      bool warn_on_legacy = false);
// "train" = all files but the last, "val" = the last. Fails with a hint when there are fewer than 2 shards.
std::vector<std::filesystem::path> split_files(const std::string& split, const std::filesystem::path& dir = {},
                                               bool warn_on_legacy = false);

// For each file of the split and each row group start, start+step, ...: f(texts of that row group).
// Stops early when f returns false.
void parquets_iter_batched(const std::string& split, int start, int step,
                           const std::function<bool(std::vector<std::string>&&)>& f,
                           const std::filesystem::path& dir = {});

// Position in the document stream, saved in checkpoints (Python's {"pq_idx", "rg_idx", "epoch"}).
struct DataState {
  int64_t pq_idx = 0;
  int64_t rg_idx = -1;  // -1: none (start the file at this rank's first row group)
  int64_t epoch = 1;
};

// The endless document stream of nanochat/dataloader.py _document_batches: rank r reads row groups r, r+ws, ... of
// every file, in slices of batch_size documents, epoch after epoch; resuming starts at the row group after the saved
// one.
class DocumentBatches {
 public:
  struct Slice {
    std::vector<std::string> docs;
    DataState state;  // position of this slice: {pq_idx, rg_idx, epoch}
  };
  DocumentBatches(std::vector<std::filesystem::path> files, int rank, int world_size, int batch_size = 128,
                  std::optional<DataState> resume = std::nullopt);
  ~DocumentBatches();
  Slice next();

 private:
  std::vector<std::filesystem::path> files_;
  int rank_, ws_, batch_size_;
  std::optional<int64_t> resume_rg_;
  int64_t resume_pq_;
  bool first_pass_ = true;
  int64_t epoch_;
  int64_t pq_idx_;
  bool file_open_ = false;
  std::unique_ptr<ParquetFile> pf_;
  int64_t rg_ = 0;
  std::vector<std::string> rg_docs_;
  size_t rg_pos_ = 0;
  int64_t cur_rg_ = 0;
  int64_t yielded_this_pass_ = 0;
};

// Downloads train shards 0..num_files-1 (num_files -1 = all) plus the validation shard kMaxShard from base_url
// into dir with num_workers threads; existing files are skipped. Prints progress (a bar on a terminal, plain lines
// otherwise) and the summary line. Fails naming the URL of the first shard that could not be fetched.
void download_shards(int num_files, int num_workers, const std::string& base_url, const std::filesystem::path& dir);

// Builds shards from local text: each PATH is a text file (one document), a .jsonl file (one document per line,
// field "text") or a directory (its files, recursively, sorted). Writes >= 2 shards of about equal size
// (the last is the validation split; more shards when the text exceeds shard_chars per shard) into dir.
// Returns the number of shards written. doc_chars > 0 cuts each document longer than that many bytes into pieces
// at blank lines (paragraphs kept whole, a piece closes before it would pass doc_chars), so that long files become
// many training documents instead of one that the loader crops to a single row.
int build_shards_from_text(const std::vector<std::string>& paths, const std::filesystem::path& dir, int64_t shard_chars,
                           int row_group_size, int64_t doc_chars = 0);
// The pieces of one document as above (the whole text when doc_chars <= 0 or the text is short enough).
std::vector<std::string> split_paragraphs(const std::string& text, int64_t doc_chars);

}  // namespace nanochat
