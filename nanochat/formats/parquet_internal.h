// parquet_internal: what parquet.cpp, parquet_thrift.cpp and parquet_writer.cpp share — the parts of the
// parquet.thrift metadata we use, the Thrift compact-protocol reader/writer, and the page codecs.
// Not a public header: use nanochat/formats/parquet.h.
// Not covered: the column/offset indexes, bloom filters, encryption, statistics (skipped when read).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nanochat::pq {

// Physical types, repetition and codecs keep parquet.thrift's numbers.
enum Type {
  BOOLEAN = 0,
  INT32 = 1,
  INT64 = 2,
  INT96 = 3,
  FLOAT = 4,
  DOUBLE = 5,
  BYTE_ARRAY = 6,
  FIXED_LEN_BYTE_ARRAY = 7
};
enum Repetition { REQUIRED = 0, OPTIONAL = 1, REPEATED = 2 };
enum Codec { UNCOMPRESSED = 0, SNAPPY = 1, GZIP = 2, LZO = 3, BROTLI = 4, LZ4 = 5, ZSTD = 6, LZ4_RAW = 7 };
enum Encoding { PLAIN = 0, PLAIN_DICTIONARY = 2, RLE = 3, BIT_PACKED = 4, RLE_DICTIONARY = 8 };
enum PageType { DATA_PAGE = 0, INDEX_PAGE = 1, DICTIONARY_PAGE = 2, DATA_PAGE_V2 = 3 };
// ConvertedType values we look at.
enum Converted { CV_UTF8 = 0, CV_MAP = 1, CV_MAP_KEY_VALUE = 2, CV_LIST = 3, CV_ENUM = 4, CV_JSON = 19 };

struct SchemaElement {
  int type = -1;  // -1 for groups
  int type_length = 0;
  int repetition = REQUIRED;
  std::string name;
  int num_children = 0;
  int converted_type = -1;
  bool logical_list = false, logical_map = false, logical_string = false;
};

struct ColumnMeta {
  int type = -1;
  std::vector<std::string> path;
  int codec = UNCOMPRESSED;
  int64_t num_values = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;
};

struct RowGroup {
  std::vector<ColumnMeta> columns;
  int64_t num_rows = 0;
};

struct FileMeta {
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
  std::string created_by;
};

struct PageHeader {
  int type = -1;
  int32_t uncompressed_size = 0, compressed_size = 0;
  // DATA_PAGE / DATA_PAGE_V2 / DICTIONARY_PAGE fields (unused ones stay 0)
  int32_t num_values = 0;
  int encoding = PLAIN;
  int def_encoding = RLE, rep_encoding = RLE;
  int32_t num_nulls = 0, num_rows = 0;
  int32_t def_bytes = 0, rep_bytes = 0;  // v2: level section lengths (never compressed)
  bool is_compressed = true;             // v2
};

// Decoders throw ParseError (a plain message); the caller adds the file name and wraps it in nanochat::Error.
struct ParseError {
  std::string what;
};
[[noreturn]] void parse_fail(std::string what);

FileMeta decode_file_meta(std::string_view bytes);
// Decodes one page header at the start of bytes; returns the header and sets *header_len to its length.
PageHeader decode_page_header(std::string_view bytes, size_t* header_len);

// Inflates a page body to exactly `uncompressed_size` bytes (anything else is a ParseError).
std::string decompress(int codec, std::string_view src, int64_t uncompressed_size);
const char* codec_name(int codec);

// Thrift compact-protocol writer, enough for the metadata parquet_writer.cpp emits.
class ThriftWriter {
 public:
  std::string out;
  void field(int id, int type);  // field header (delta-encoded within the current struct)
  void i32(int id, int32_t v);
  void i64(int id, int64_t v);
  void str(int id, std::string_view s);
  void list_begin(int id, int elem_type, int size);
  void list_i32(int32_t v) { varint(zigzag(v)); }
  void list_str(std::string_view s);
  void struct_begin(int id);  // a struct-valued field
  void elem_struct_begin();   // a struct element of a list
  void struct_end();          // writes STOP and restores the enclosing struct's field counter
  void varint(uint64_t v);
  static uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }

 private:
  std::vector<int> last_ids_{0};
};
// Compact-protocol type ids.
enum CType {
  CT_STOP = 0,
  CT_TRUE = 1,
  CT_FALSE = 2,
  CT_BYTE = 3,
  CT_I16 = 4,
  CT_I32 = 5,
  CT_I64 = 6,
  CT_DOUBLE = 7,
  CT_BINARY = 8,
  CT_LIST = 9,
  CT_SET = 10,
  CT_MAP = 11,
  CT_STRUCT = 12
};

}  // namespace nanochat::pq
