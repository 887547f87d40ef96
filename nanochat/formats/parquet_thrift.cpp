// parquet_thrift: the Thrift compact protocol as parquet uses it — decoding FileMetaData (footer) and
// PageHeader, encoding the few structs the writer needs — plus the page codecs (snappy, gzip, zstd).
// Every read is bounds-checked: a corrupt or truncated footer is a ParseError, never a crash.
// Fields we do not use (statistics, indexes, key/value metadata, ...) are skipped generically.
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <fmt/core.h>

#include "nanochat/formats/parquet_internal.h"

namespace nanochat::pq {

void parse_fail(std::string what) { throw ParseError{std::move(what)}; }

namespace {

constexpr int kMaxDepth = 64;

class Reader {
 public:
  explicit Reader(std::string_view b)
      : p_(reinterpret_cast<const uint8_t*>(b.data())), end_(p_ + b.size()), begin_(p_) {}
  size_t consumed() const { return size_t(p_ - begin_); }
  size_t remaining() const { return size_t(end_ - p_); }

  uint8_t byte() {
    if (p_ >= end_) parse_fail("truncated thrift metadata");
    return *p_++;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    parse_fail("bad varint in thrift metadata");
  }
  int64_t zz() {
    uint64_t v = varint();
    return int64_t(v >> 1) ^ -int64_t(v & 1);
  }
  int32_t i32() {
    int64_t v = zz();
    if (v < INT32_MIN || v > INT32_MAX) parse_fail("i32 out of range in thrift metadata");
    return int32_t(v);
  }
  std::string_view binary() {
    uint64_t n = varint();
    if (n > remaining()) parse_fail("string runs past the end of the thrift metadata");
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // Reads a list header; returns the element count (bounded by what could possibly be left).
  int64_t list_begin(int* elem_type) {
    uint8_t h = byte();
    int64_t n = h >> 4;
    if (n == 15) n = int64_t(varint());
    *elem_type = h & 0x0f;
    if (n < 0 || uint64_t(n) > remaining()) parse_fail("list size larger than the thrift metadata");
    return n;
  }
  // Iterates the fields of a struct: calls f(field_id, compact_type) for each until STOP. For boolean fields
  // the type itself carries the value (CT_TRUE / CT_FALSE).
  template <typename F>
  void read_struct(F&& f, int depth = 0) {
    if (depth > kMaxDepth) parse_fail("thrift metadata nested too deeply");
    int last = 0;
    for (;;) {
      uint8_t h = byte();
      int type = h & 0x0f;
      if (type == CT_STOP) return;
      int delta = h >> 4;
      int id = delta ? last + delta : int(zz());
      last = id;
      f(id, type);
    }
  }
  void skip(int type, int depth = 0) {
    if (depth > kMaxDepth) parse_fail("thrift metadata nested too deeply");
    switch (type) {
      case CT_TRUE:
      case CT_FALSE:
        return;  // value is in the field header
      case CT_BYTE:
        byte();
        return;
      case CT_I16:
      case CT_I32:
      case CT_I64:
        varint();
        return;
      case CT_DOUBLE:
        if (remaining() < 8) parse_fail("truncated thrift metadata");
        p_ += 8;
        return;
      case CT_BINARY:
        binary();
        return;
      case CT_LIST:
      case CT_SET: {
        int et;
        int64_t n = list_begin(&et);
        for (int64_t i = 0; i < n; i++) {
          if (et == CT_TRUE || et == CT_FALSE)
            byte();  // booleans inside lists take one byte each
          else
            skip(et, depth + 1);
        }
        return;
      }
      case CT_MAP: {
        uint64_t n = varint();
        if (n == 0) return;
        if (n > remaining()) parse_fail("map size larger than the thrift metadata");
        uint8_t kv = byte();
        for (uint64_t i = 0; i < n; i++) {
          skip(kv >> 4, depth + 1);
          skip(kv & 0x0f, depth + 1);
        }
        return;
      }
      case CT_STRUCT:
        read_struct([&](int, int t) { skip(t, depth + 1); }, depth + 1);
        return;
      default:
        parse_fail(fmt::format("unknown thrift type {}", type));
    }
  }
  void expect(int type, int want, const char* what) {
    if (type != want) parse_fail(fmt::format("thrift field {} has type {}, expected {}", what, type, want));
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
};

// Reads a list of structs, calling item() once per element (the reader is positioned at its fields).
template <typename F>
void read_struct_list(Reader& r, int type, const char* what, F&& item) {
  r.expect(type, CT_LIST, what);
  int et;
  int64_t n = r.list_begin(&et);
  if (n > 0 && et != CT_STRUCT) parse_fail(fmt::format("{} is not a list of structs", what));
  for (int64_t i = 0; i < n; i++) item();
}

SchemaElement read_schema_element(Reader& r) {
  SchemaElement e;
  r.read_struct([&](int id, int t) {
    switch (id) {
      case 1:
        r.expect(t, CT_I32, "SchemaElement.type");
        e.type = r.i32();
        break;
      case 2:
        r.expect(t, CT_I32, "SchemaElement.type_length");
        e.type_length = r.i32();
        break;
      case 3:
        r.expect(t, CT_I32, "SchemaElement.repetition_type");
        e.repetition = r.i32();
        break;
      case 4:
        r.expect(t, CT_BINARY, "SchemaElement.name");
        e.name = std::string(r.binary());
        break;
      case 5:
        r.expect(t, CT_I32, "SchemaElement.num_children");
        e.num_children = r.i32();
        break;
      case 6:
        r.expect(t, CT_I32, "SchemaElement.converted_type");
        e.converted_type = r.i32();
        break;
      case 10:  // LogicalType: a union; we only need to know STRING / MAP / LIST / JSON / ENUM
        r.expect(t, CT_STRUCT, "SchemaElement.logicalType");
        r.read_struct([&](int lid, int lt) {
          if (lid == 1 || lid == 4 || lid == 12) e.logical_string = true;
          if (lid == 2) e.logical_map = true;
          if (lid == 3) e.logical_list = true;
          r.skip(lt);
        });
        break;
      default:
        r.skip(t);
    }
  });
  if (e.repetition < REQUIRED || e.repetition > REPEATED)
    parse_fail(fmt::format("bad repetition type {}", e.repetition));
  if (e.num_children < 0) parse_fail("negative num_children in schema");
  return e;
}

ColumnMeta read_column_meta(Reader& r) {
  ColumnMeta m;
  r.read_struct([&](int id, int t) {
    switch (id) {
      case 1:
        r.expect(t, CT_I32, "ColumnMetaData.type");
        m.type = r.i32();
        break;
      case 3: {
        r.expect(t, CT_LIST, "ColumnMetaData.path_in_schema");
        int et;
        int64_t n = r.list_begin(&et);
        if (n > 0 && et != CT_BINARY) parse_fail("path_in_schema is not a list of strings");
        for (int64_t i = 0; i < n; i++) m.path.emplace_back(r.binary());
        break;
      }
      case 4:
        r.expect(t, CT_I32, "ColumnMetaData.codec");
        m.codec = r.i32();
        break;
      case 5:
        r.expect(t, CT_I64, "ColumnMetaData.num_values");
        m.num_values = r.zz();
        break;
      case 7:
        r.expect(t, CT_I64, "ColumnMetaData.total_compressed_size");
        m.total_compressed_size = r.zz();
        break;
      case 9:
        r.expect(t, CT_I64, "ColumnMetaData.data_page_offset");
        m.data_page_offset = r.zz();
        break;
      case 11:
        r.expect(t, CT_I64, "ColumnMetaData.dictionary_page_offset");
        m.dictionary_page_offset = r.zz();
        break;
      default:
        r.skip(t);
    }
  });
  if (m.num_values < 0 || m.total_compressed_size < 0 || m.data_page_offset < 0)
    parse_fail("negative size or offset in column metadata");
  return m;
}

RowGroup read_row_group(Reader& r) {
  RowGroup g;
  r.read_struct([&](int id, int t) {
    switch (id) {
      case 1:
        read_struct_list(r, t, "RowGroup.columns", [&] {
          ColumnMeta m;
          bool have = false;
          r.read_struct([&](int cid, int ct) {
            if (cid == 1) parse_fail("column chunks stored in other files are not supported");
            if (cid == 3) {
              r.expect(ct, CT_STRUCT, "ColumnChunk.meta_data");
              m = read_column_meta(r);
              have = true;
            } else {
              r.skip(ct);
            }
          });
          if (!have) parse_fail("column chunk without metadata");
          g.columns.push_back(std::move(m));
        });
        break;
      case 3:
        r.expect(t, CT_I64, "RowGroup.num_rows");
        g.num_rows = r.zz();
        break;
      default:
        r.skip(t);
    }
  });
  if (g.num_rows < 0) parse_fail("negative row count in a row group");
  return g;
}

}  // namespace

FileMeta decode_file_meta(std::string_view bytes) {
  Reader r(bytes);
  FileMeta fm;
  r.read_struct([&](int id, int t) {
    switch (id) {
      case 2:
        read_struct_list(r, t, "FileMetaData.schema", [&] { fm.schema.push_back(read_schema_element(r)); });
        break;
      case 3:
        r.expect(t, CT_I64, "FileMetaData.num_rows");
        fm.num_rows = r.zz();
        break;
      case 4:
        read_struct_list(r, t, "FileMetaData.row_groups", [&] { fm.row_groups.push_back(read_row_group(r)); });
        break;
      case 6:
        r.expect(t, CT_BINARY, "FileMetaData.created_by");
        fm.created_by = std::string(r.binary());
        break;
      default:
        r.skip(t);
    }
  });
  if (fm.schema.empty()) parse_fail("footer has no schema");
  if (fm.num_rows < 0) parse_fail("negative row count");
  return fm;
}

PageHeader decode_page_header(std::string_view bytes, size_t* header_len) {
  Reader r(bytes);
  PageHeader h;
  auto data_header = [&](bool v2) {
    r.read_struct([&](int id, int t) {
      auto i32 = [&](const char* what) {
        r.expect(t, CT_I32, what);
        return r.i32();
      };
      if (!v2) {
        switch (id) {
          case 1:
            h.num_values = i32("DataPageHeader.num_values");
            break;
          case 2:
            h.encoding = i32("DataPageHeader.encoding");
            break;
          case 3:
            h.def_encoding = i32("DataPageHeader.definition_level_encoding");
            break;
          case 4:
            h.rep_encoding = i32("DataPageHeader.repetition_level_encoding");
            break;
          default:
            r.skip(t);
        }
      } else {
        switch (id) {
          case 1:
            h.num_values = i32("DataPageHeaderV2.num_values");
            break;
          case 2:
            h.num_nulls = i32("DataPageHeaderV2.num_nulls");
            break;
          case 3:
            h.num_rows = i32("DataPageHeaderV2.num_rows");
            break;
          case 4:
            h.encoding = i32("DataPageHeaderV2.encoding");
            break;
          case 5:
            h.def_bytes = i32("DataPageHeaderV2.definition_levels_byte_length");
            break;
          case 6:
            h.rep_bytes = i32("DataPageHeaderV2.repetition_levels_byte_length");
            break;
          case 7:
            if (t != CT_TRUE && t != CT_FALSE) parse_fail("DataPageHeaderV2.is_compressed is not a bool");
            h.is_compressed = (t == CT_TRUE);
            break;
          default:
            r.skip(t);
        }
      }
    });
  };
  r.read_struct([&](int id, int t) {
    switch (id) {
      case 1:
        r.expect(t, CT_I32, "PageHeader.type");
        h.type = r.i32();
        break;
      case 2:
        r.expect(t, CT_I32, "PageHeader.uncompressed_page_size");
        h.uncompressed_size = r.i32();
        break;
      case 3:
        r.expect(t, CT_I32, "PageHeader.compressed_page_size");
        h.compressed_size = r.i32();
        break;
      case 5:
        r.expect(t, CT_STRUCT, "PageHeader.data_page_header");
        data_header(false);
        break;
      case 7:
        r.expect(t, CT_STRUCT, "PageHeader.dictionary_page_header");
        r.read_struct([&](int did, int dt) {
          if (did == 1) {
            r.expect(dt, CT_I32, "DictionaryPageHeader.num_values");
            h.num_values = r.i32();
          } else if (did == 2) {
            r.expect(dt, CT_I32, "DictionaryPageHeader.encoding");
            h.encoding = r.i32();
          } else
            r.skip(dt);
        });
        break;
      case 8:
        r.expect(t, CT_STRUCT, "PageHeader.data_page_header_v2");
        data_header(true);
        break;
      default:
        r.skip(t);
    }
  });
  if (h.uncompressed_size < 0 || h.compressed_size < 0 || h.num_values < 0 || h.def_bytes < 0 || h.rep_bytes < 0 ||
      h.num_nulls < 0)
    parse_fail("negative size in page header");
  *header_len = r.consumed();
  return h;
}

const char* codec_name(int codec) {
  switch (codec) {
    case UNCOMPRESSED:
      return "UNCOMPRESSED";
    case SNAPPY:
      return "SNAPPY";
    case GZIP:
      return "GZIP";
    case LZO:
      return "LZO";
    case BROTLI:
      return "BROTLI";
    case LZ4:
      return "LZ4";
    case ZSTD:
      return "ZSTD";
    case LZ4_RAW:
      return "LZ4_RAW";
    default:
      return "unknown";
  }
}

std::string decompress(int codec, std::string_view src, int64_t n) {
  // A page's declared size is checked against what the codec can possibly produce before allocating, so a
  // corrupt header cannot make us reserve gigabytes.
  if (n < 0 || n > (int64_t(1) << 31)) parse_fail(fmt::format("implausible uncompressed page size {}", n));
  std::string out;
  switch (codec) {
    case UNCOMPRESSED:
      if (int64_t(src.size()) != n) parse_fail("uncompressed page size does not match its compressed size");
      return std::string(src);
    case SNAPPY: {
      size_t len = 0;
      if (!snappy::GetUncompressedLength(src.data(), src.size(), &len) || int64_t(len) != n)
        parse_fail("corrupt snappy page (length mismatch)");
      out.resize(len);
      if (!snappy::RawUncompress(src.data(), src.size(), out.data())) parse_fail("corrupt snappy page");
      return out;
    }
    case GZIP: {
      if (n > int64_t(src.size()) * 1100 + 1024) parse_fail("implausible gzip page size");
      out.resize(size_t(n));
      z_stream zs{};
      if (inflateInit2(&zs, 15 + 32) != Z_OK) parse_fail("zlib init failed");
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(src.data()));
      zs.avail_in = uInt(src.size());
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = uInt(out.size());
      int rc = inflate(&zs, Z_FINISH);
      uint64_t produced = zs.total_out;
      inflateEnd(&zs);
      if (rc != Z_STREAM_END || int64_t(produced) != n) parse_fail("corrupt gzip page");
      return out;
    }
    case ZSTD: {
      unsigned long long fs = ZSTD_getFrameContentSize(src.data(), src.size());
      if (fs == ZSTD_CONTENTSIZE_ERROR) parse_fail("corrupt zstd page (bad frame header)");
      if (fs != ZSTD_CONTENTSIZE_UNKNOWN && int64_t(fs) != n) parse_fail("corrupt zstd page (size mismatch)");
      if (fs == ZSTD_CONTENTSIZE_UNKNOWN && n > int64_t(src.size()) * 4096 + (1 << 20))
        parse_fail("implausible zstd page size");
      out.resize(size_t(n));
      size_t rc = ZSTD_decompress(out.data(), out.size(), src.data(), src.size());
      if (ZSTD_isError(rc)) parse_fail(fmt::format("corrupt zstd page ({})", ZSTD_getErrorName(rc)));
      if (int64_t(rc) != n) parse_fail("corrupt zstd page (short)");
      return out;
    }
    default:
      parse_fail(
          fmt::format("compression codec {} is not supported (use SNAPPY, GZIP, ZSTD or none)", codec_name(codec)));
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Writer

void ThriftWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

void ThriftWriter::field(int id, int type) {
  int& last = last_ids_.back();
  int delta = id - last;
  if (delta > 0 && delta <= 15) {
    out.push_back(char((delta << 4) | type));
  } else {
    out.push_back(char(type));
    varint(zigzag(id));
  }
  last = id;
}

void ThriftWriter::i32(int id, int32_t v) {
  field(id, CT_I32);
  varint(zigzag(v));
}
void ThriftWriter::i64(int id, int64_t v) {
  field(id, CT_I64);
  varint(zigzag(v));
}
void ThriftWriter::str(int id, std::string_view s) {
  field(id, CT_BINARY);
  list_str(s);
}
void ThriftWriter::list_str(std::string_view s) {
  varint(s.size());
  out.append(s);
}
void ThriftWriter::list_begin(int id, int elem_type, int size) {
  field(id, CT_LIST);
  if (size < 15) {
    out.push_back(char((size << 4) | elem_type));
  } else {
    out.push_back(char(0xf0 | elem_type));
    varint(uint64_t(size));
  }
}
void ThriftWriter::struct_begin(int id) {
  field(id, CT_STRUCT);
  last_ids_.push_back(0);
}
void ThriftWriter::elem_struct_begin() { last_ids_.push_back(0); }
void ThriftWriter::struct_end() {
  out.push_back(char(CT_STOP));
  last_ids_.pop_back();
}

}  // namespace nanochat::pq
