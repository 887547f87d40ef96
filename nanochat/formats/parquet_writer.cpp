// parquet_writer: writes nanochat-style pretraining shards — one required UTF-8 column, ZSTD, data pages v1 with
// PLAIN values (pages of about 1 MiB), no dictionary, no statistics. Used by `nanochat dataset --from-text` and by
// tests. Files are written to "<path>.tmp" and renamed on finish(), so a final name never holds a partial file.
// Not covered: other types, nulls, nesting, dictionaries — the reader handles those; the writer need not.
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "nanochat/common.h"
#include "nanochat/formats/parquet.h"
#include "nanochat/formats/parquet_internal.h"

namespace nanochat {

using namespace pq;

namespace {
constexpr size_t kPageBytes = 1 << 20;

void put_u32(std::string& s, uint32_t v) {
  for (int k = 0; k < 4; k++) s.push_back(char((v >> (8 * k)) & 0xff));
}
}  // namespace

ParquetStringWriter::ParquetStringWriter(const std::filesystem::path& path, std::string column, int zstd_level)
    : path_(path), column_(std::move(column)), level_(zstd_level) {
  tmp_ = path_;
  tmp_ += ".tmp";
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail("cannot write {}: {}", tmp_.string(), std::strerror(errno));
  write_bytes("PAR1");
}

ParquetStringWriter::~ParquetStringWriter() {
  if (f_) {
    std::fclose(f_);
    std::filesystem::remove(tmp_);
  }
}

void ParquetStringWriter::write_bytes(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size())
    fail("cannot write {}: {}", tmp_.string(), std::strerror(errno));
  offset_ += int64_t(s.size());
}

void ParquetStringWriter::write_row_group(const std::vector<std::string>& values) {
  if (!f_) fail("parquet writer for {} is already finished", path_.string());
  Chunk chunk{int64_t(values.size()), offset_, 0, 0};
  size_t i = 0;
  do {  // one or more pages of about kPageBytes each (an empty row group still gets one empty page)
    std::string plain;
    size_t n = 0;
    while (i < values.size() && (n == 0 || plain.size() + values[i].size() + 4 <= kPageBytes)) {
      if (values[i].size() > UINT32_MAX / 2)
        fail("document of {} bytes is too large for a parquet page", values[i].size());
      put_u32(plain, uint32_t(values[i].size()));
      plain += values[i];
      i++, n++;
    }
    std::string packed(ZSTD_compressBound(plain.size()), '\0');
    size_t rc = ZSTD_compress(packed.data(), packed.size(), plain.data(), plain.size(), level_);
    if (ZSTD_isError(rc)) fail("zstd compression failed: {}", ZSTD_getErrorName(rc));
    packed.resize(rc);
    if (plain.size() > INT32_MAX || packed.size() > INT32_MAX) fail("parquet page too large");
    ThriftWriter h;
    h.i32(1, DATA_PAGE);
    h.i32(2, int32_t(plain.size()));
    h.i32(3, int32_t(packed.size()));
    h.struct_begin(5);  // DataPageHeader
    h.i32(1, int32_t(n));
    h.i32(2, PLAIN);
    h.i32(3, RLE);
    h.i32(4, RLE);
    h.struct_end();
    h.out.push_back(char(CT_STOP));
    write_bytes(h.out);
    write_bytes(packed);
    chunk.compressed_size += int64_t(h.out.size() + packed.size());
    chunk.uncompressed_size += int64_t(h.out.size() + plain.size());
  } while (i < values.size());
  chunks_.push_back(chunk);
}

void ParquetStringWriter::finish() {
  if (!f_) fail("parquet writer for {} is already finished", path_.string());
  int64_t total_rows = 0;
  for (const auto& c : chunks_) total_rows += c.num_rows;
  ThriftWriter m;
  m.i32(1, 1);  // version
  m.list_begin(2, CT_STRUCT, 2);
  m.elem_struct_begin();  // the root
  m.str(4, "schema");
  m.i32(5, 1);
  m.struct_end();
  m.elem_struct_begin();  // the one column
  m.i32(1, BYTE_ARRAY);
  m.i32(3, REQUIRED);
  m.str(4, column_);
  m.i32(6, CV_UTF8);
  m.struct_begin(10);  // LogicalType { STRING {} }
  m.struct_begin(1);
  m.struct_end();
  m.struct_end();
  m.struct_end();
  m.i64(3, total_rows);
  m.list_begin(4, CT_STRUCT, int(chunks_.size()));
  for (const auto& c : chunks_) {
    m.elem_struct_begin();  // RowGroup
    m.list_begin(1, CT_STRUCT, 1);
    m.elem_struct_begin();  // ColumnChunk
    m.i64(2, c.offset);
    m.struct_begin(3);  // ColumnMetaData
    m.i32(1, BYTE_ARRAY);
    m.list_begin(2, CT_I32, 2);
    m.list_i32(PLAIN);
    m.list_i32(RLE);
    m.list_begin(3, CT_BINARY, 1);
    m.list_str(column_);
    m.i32(4, ZSTD);
    m.i64(5, c.num_rows);
    m.i64(6, c.uncompressed_size);
    m.i64(7, c.compressed_size);
    m.i64(9, c.offset);
    m.struct_end();
    m.struct_end();
    m.i64(2, c.uncompressed_size);
    m.i64(3, c.num_rows);
    m.struct_end();
  }
  m.str(6, "nanochat");
  m.out.push_back(char(CT_STOP));
  std::string tail = m.out;
  put_u32(tail, uint32_t(m.out.size()));
  tail += "PAR1";
  write_bytes(tail);
  bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  if (!ok) {
    std::filesystem::remove(tmp_);
    fail("cannot write {}: {}", tmp_.string(), std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::filesystem::remove(tmp_);
    fail("cannot rename {} to {}: {}", tmp_.string(), path_.string(), ec.message());
  }
  fsync_dir(path_.has_parent_path() ? path_.parent_path() : std::filesystem::path("."));
}

void write_parquet_strings(const std::filesystem::path& path, const std::string& column,
                           const std::vector<std::string>& values, int64_t row_group_size) {
  if (row_group_size <= 0) fail("row group size must be positive, got {}", row_group_size);
  ParquetStringWriter w(path, column);
  for (size_t i = 0; i < values.size() || (i == 0 && values.empty()); i += size_t(row_group_size)) {
    if (values.empty()) break;
    size_t end = std::min(values.size(), i + size_t(row_group_size));
    w.write_row_group(std::vector<std::string>(values.begin() + long(i), values.begin() + long(end)));
  }
  w.finish();
}

}  // namespace nanochat
