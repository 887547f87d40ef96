// parquet: a self-contained Apache Parquet reader (and a one-column writer) for nanochat's data — the
// pretraining shards (one zstd `text` column) and HuggingFace task files (snappy, nested lists and structs).
//
//   nanochat::ParquetFile pf("shard_00000.parquet");
//   for (int rg = 0; rg < pf.num_row_groups(); rg++) {
//     std::vector<std::string> docs = pf.read_strings(rg, "text");      // the fast path
//     std::vector<nlohmann::json> rows = pf.read_rows(rg, {"messages"}); // any columns, as JSON objects
//   }
//
// Reads: footer + Thrift compact metadata, data pages v1 and v2, dictionary pages, PLAIN / PLAIN_DICTIONARY /
// RLE_DICTIONARY values, RLE/bit-packed hybrid levels, codecs UNCOMPRESSED / SNAPPY / GZIP / ZSTD, optional and
// repeated columns at any depth (lists as JSON arrays, structs as objects, nulls as null, maps as arrays of
// {key, value}). Types: bool, int32, int64, float, double, strings/binary (as JSON strings).
// Also DELTA_BINARY_PACKED / DELTA_LENGTH_BYTE_ARRAY / DELTA_BYTE_ARRAY (what arrow writes in v2 pages).
// Not covered: BYTE_STREAM_SPLIT, LZ4/BROTLI, INT96, encryption — these fail with an Error.
// A ParquetFile is safe to read from several threads at once (pread on one descriptor).
// Any corrupt or truncated input throws nanochat::Error naming the file and the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanochat {

class ParquetFile {
 public:
  explicit ParquetFile(const std::filesystem::path& path);
  ~ParquetFile();
  ParquetFile(ParquetFile&&) noexcept;
  ParquetFile& operator=(ParquetFile&&) noexcept;

  const std::filesystem::path& path() const;
  int64_t num_rows() const;
  int num_row_groups() const;
  int64_t row_group_num_rows(int rg) const;
  // Top-level column (field) names in schema order.
  std::vector<std::string> column_names() const;

  // One flat string column of a row group (required or optional without nulls). Fails on nulls or nesting.
  std::vector<std::string> read_strings(int rg, const std::string& column) const;
  // The rows of a row group as JSON objects {column: value}; `columns` empty = all top-level columns.
  std::vector<nlohmann::json> read_rows(int rg, const std::vector<std::string>& columns = {}) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Writes a parquet file with one required UTF-8 column: ZSTD pages (v1, PLAIN), `row_group_size` rows per row
// group, no dictionary, no statistics — the layout of nanochat's pretraining shards. Rows are added one row
// group at a time; finish() writes the footer and renames "<path>.tmp" to path (nothing under path before that).
class ParquetStringWriter {
 public:
  ParquetStringWriter(const std::filesystem::path& path, std::string column, int zstd_level = 3);
  ~ParquetStringWriter();  // without finish(): removes the temp file
  void write_row_group(const std::vector<std::string>& values);
  void finish();

 private:
  struct Chunk {
    int64_t num_rows, offset, compressed_size, uncompressed_size;
  };
  std::filesystem::path path_, tmp_;
  std::string column_;
  int level_;
  FILE* f_ = nullptr;
  int64_t offset_ = 0;
  std::vector<Chunk> chunks_;
  void write_bytes(const std::string& s);
};

// Convenience: a whole file written in one go (row groups of row_group_size).
void write_parquet_strings(const std::filesystem::path& path, const std::string& column,
                           const std::vector<std::string>& values, int64_t row_group_size = 1024);

}  // namespace nanochat
