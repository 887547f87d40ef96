// parquet: reading — the schema tree, column chunks (pages, levels, values) and record assembly into JSON.
// See parquet.h for the API and what is covered; parquet_thrift.cpp decodes the metadata.
//
// Record assembly: each leaf column is assembled on its own into per-row JSON skeletons by walking its schema
// path with the (repetition, definition, value) triples; the skeletons of sibling leaves are then deep-merged
// (objects by key, arrays element by element). This handles list<string>, list<struct<...>>, struct<list, list>
// and deeper nestings with one small routine.
#include "nanochat/formats/parquet.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "nanochat/common.h"
#include "nanochat/formats/parquet_internal.h"

namespace nanochat {

using nlohmann::json;
using namespace pq;

namespace {

struct Node {
  SchemaElement e;
  std::vector<int> children;
  int max_def = 0, max_rep = 0;
  bool keyed = false;           // appears as a key of its parent's JSON object
  bool children_keyed = false;  // a struct-like group: its children become keys
  int leaf = -1;                // leaf column index (primitive nodes)
  std::vector<int> path;        // nodes from the top-level field down to this one (root excluded)
};

// Decoded values of one column chunk. Levels are empty when their maximum is 0.
struct Column {
  std::vector<int16_t> def, rep;
  std::vector<std::string> s;  // BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY
  std::vector<int64_t> i;      // BOOLEAN, INT32, INT64
  std::vector<double> d;       // FLOAT, DOUBLE
  int64_t num_values = 0;      // including nulls
};

uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The RLE / bit-packed hybrid encoding (levels, dictionary indices, RLE booleans). Appends `count` values.
template <typename T>
void decode_hybrid(const uint8_t* p, size_t len, int bit_width, int64_t count, std::vector<T>& out) {
  if (bit_width < 0 || bit_width > 32) parse_fail(fmt::format("bad bit width {}", bit_width));
  const uint8_t* end = p + len;
  int64_t produced = 0;
  const int value_bytes = (bit_width + 7) / 8;
  const uint64_t mask = bit_width == 32 ? 0xffffffffull : ((1ull << bit_width) - 1);
  while (produced < count) {
    uint64_t header = 0;
    for (int shift = 0;; shift += 7) {
      if (p >= end || shift > 35) parse_fail("truncated RLE/bit-packed data");
      uint8_t b = *p++;
      header |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (header & 1) {  // bit-packed: (header >> 1) groups of 8 values, LSB first
      uint64_t n = (header >> 1) * 8;
      uint64_t nbytes = (header >> 1) * uint64_t(bit_width);
      if (nbytes > uint64_t(end - p)) parse_fail("truncated bit-packed run");
      uint64_t take = std::min<uint64_t>(n, uint64_t(count - produced));
      uint64_t bitpos = 0;
      for (uint64_t k = 0; k < take; k++) {
        uint64_t v = 0;
        for (int b = 0; b < bit_width; b++, bitpos++) v |= uint64_t((p[bitpos >> 3] >> (bitpos & 7)) & 1) << b;
        out.push_back(T(v & mask));
      }
      p += nbytes;
      produced += int64_t(take);
    } else {  // RLE run: (header >> 1) copies of one value
      uint64_t run = header >> 1;
      if (value_bytes > end - p) parse_fail("truncated RLE run");
      uint64_t v = 0;
      for (int b = 0; b < value_bytes; b++) v |= uint64_t(p[b]) << (8 * b);
      p += value_bytes;
      if (run == 0) parse_fail("empty RLE run");
      uint64_t take = std::min<uint64_t>(run, uint64_t(count - produced));
      out.insert(out.end(), take, T(v));
      produced += int64_t(take);
    }
  }
}

int bit_width_of(int max_level) {
  int w = 0;
  while ((1 << w) <= max_level) w++;
  return w;
}

// Plain-encoded values of a physical type, appended to the column's value vectors. Returns bytes consumed.
size_t decode_plain(int type, int type_length, const uint8_t* p, size_t len, int64_t n, Column& c) {
  const uint8_t* start = p;
  const uint8_t* end = p + len;
  auto need = [&](uint64_t bytes) {
    if (bytes > uint64_t(end - p)) parse_fail("page values run past the end of the page");
  };
  switch (type) {
    case BOOLEAN:
      need((uint64_t(n) + 7) / 8);
      for (int64_t k = 0; k < n; k++) c.i.push_back((p[k >> 3] >> (k & 7)) & 1);
      p += (n + 7) / 8;
      break;
    case INT32:
      need(uint64_t(n) * 4);
      for (int64_t k = 0; k < n; k++, p += 4) c.i.push_back(int32_t(load_u32(p)));
      break;
    case INT64:
      need(uint64_t(n) * 8);
      for (int64_t k = 0; k < n; k++, p += 8) {
        int64_t v;
        std::memcpy(&v, p, 8);
        c.i.push_back(v);
      }
      break;
    case FLOAT:
      need(uint64_t(n) * 4);
      for (int64_t k = 0; k < n; k++, p += 4) {
        float v;
        std::memcpy(&v, p, 4);
        c.d.push_back(v);
      }
      break;
    case DOUBLE:
      need(uint64_t(n) * 8);
      for (int64_t k = 0; k < n; k++, p += 8) {
        double v;
        std::memcpy(&v, p, 8);
        c.d.push_back(v);
      }
      break;
    case BYTE_ARRAY:
      need(uint64_t(n) * 4);  // every value has at least its length prefix
      c.s.reserve(c.s.size() + size_t(n));
      for (int64_t k = 0; k < n; k++) {
        need(4);
        uint32_t l = load_u32(p);
        p += 4;
        need(l);
        c.s.emplace_back(reinterpret_cast<const char*>(p), l);
        p += l;
      }
      break;
    case FIXED_LEN_BYTE_ARRAY:
      if (type_length <= 0) parse_fail("FIXED_LEN_BYTE_ARRAY without a length");
      need(uint64_t(n) * uint64_t(type_length));
      for (int64_t k = 0; k < n; k++, p += type_length) c.s.emplace_back(reinterpret_cast<const char*>(p), type_length);
      break;
    default:
      parse_fail(fmt::format("physical type {} is not supported", type));
  }
  return size_t(p - start);
}

// DELTA_BINARY_PACKED: appends the values to out; returns bytes consumed.
size_t decode_delta_binary(const uint8_t* p, size_t len, std::vector<int64_t>& out) {
  const uint8_t* start = p;
  const uint8_t* end = p + len;
  auto uvarint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (p >= end || shift > 63) parse_fail("truncated DELTA_BINARY_PACKED header");
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  auto zz = [&] {
    uint64_t v = uvarint();
    return int64_t(v >> 1) ^ -int64_t(v & 1);
  };
  uint64_t block = uvarint(), miniblocks = uvarint(), total = uvarint();
  int64_t value = zz();
  if (block == 0 || miniblocks == 0 || block % miniblocks || (block / miniblocks) % 8 || block > (1u << 20))
    parse_fail("bad DELTA_BINARY_PACKED block layout");
  if (total > (uint64_t(len) + 1) * block) parse_fail("implausible DELTA_BINARY_PACKED value count");
  const uint64_t per_mini = block / miniblocks;
  if (total == 0) return size_t(p - start);
  out.push_back(value);
  uint64_t left = total - 1;
  while (left > 0) {
    int64_t min_delta = zz();
    if (uint64_t(end - p) < miniblocks) parse_fail("truncated DELTA_BINARY_PACKED block");
    const uint8_t* widths = p;
    p += miniblocks;
    for (uint64_t m = 0; m < miniblocks && left > 0; m++) {
      int w = widths[m];
      if (w > 64) parse_fail("bad DELTA_BINARY_PACKED bit width");
      uint64_t nbytes = per_mini * uint64_t(w) / 8;
      if (nbytes > uint64_t(end - p)) parse_fail("truncated DELTA_BINARY_PACKED miniblock");
      uint64_t take = std::min(per_mini, left);
      uint64_t bitpos = 0;
      for (uint64_t k = 0; k < take; k++) {
        uint64_t v = 0;
        for (int b = 0; b < w; b++, bitpos++) v |= uint64_t((p[bitpos >> 3] >> (bitpos & 7)) & 1) << b;
        value = int64_t(uint64_t(value) + uint64_t(min_delta) + v);
        out.push_back(value);
      }
      p += nbytes;
      left -= take;
    }
  }
  return size_t(p - start);
}

// DELTA_LENGTH_BYTE_ARRAY (prefix empty) and DELTA_BYTE_ARRAY (front-coded): n strings appended to out.
void decode_delta_strings(const uint8_t* p, size_t len, int64_t n, bool front_coded, std::vector<std::string>& out) {
  const uint8_t* end = p + len;
  std::vector<int64_t> prefix, suffix;
  if (front_coded) p += decode_delta_binary(p, size_t(end - p), prefix);
  p += decode_delta_binary(p, size_t(end - p), suffix);
  if (int64_t(suffix.size()) < n || (front_coded && int64_t(prefix.size()) < n))
    parse_fail("DELTA string lengths missing");
  std::string prev;
  for (int64_t k = 0; k < n; k++) {
    int64_t pre = front_coded ? prefix[size_t(k)] : 0, suf = suffix[size_t(k)];
    if (pre < 0 || suf < 0 || uint64_t(pre) > prev.size() || uint64_t(suf) > uint64_t(end - p))
      parse_fail("bad DELTA string lengths");
    std::string v = prev.substr(0, size_t(pre));
    v.append(reinterpret_cast<const char*>(p), size_t(suf));
    p += suf;
    out.push_back(v);
    if (front_coded) prev = std::move(v);
  }
}

// Reads one level section of a v1 page (4-byte length prefix). Returns bytes consumed.
size_t read_v1_levels(const uint8_t* p, size_t len, int encoding, int max_level, int64_t n, std::vector<int16_t>& out) {
  if (encoding != RLE) parse_fail(fmt::format("level encoding {} is not supported (only RLE)", encoding));
  if (len < 4) parse_fail("truncated level section");
  uint32_t l = load_u32(p);
  if (l > len - 4) parse_fail("level section runs past the end of the page");
  decode_hybrid(p + 4, l, bit_width_of(max_level), n, out);
  return 4 + size_t(l);
}

}  // namespace

struct ParquetFile::Impl {
  std::filesystem::path path;
  int fd = -1;
  int64_t file_size = 0;
  FileMeta meta;
  std::vector<Node> nodes;  // nodes[0] is the root
  std::vector<int> leaves;  // node index of each leaf column, in column-chunk order

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  [[noreturn]] void corrupt(const std::string& what) const {
    fail("{}: corrupt or unsupported parquet file: {}", path.string(), what);
  }

  std::string pread_range(int64_t off, int64_t len) const {
    if (off < 0 || len < 0 || off > file_size || len > file_size - off)
      parse_fail(fmt::format("byte range [{}, +{}) lies outside the file ({} bytes; truncated?)", off, len, file_size));
    std::string buf(size_t(len), '\0');
    int64_t got = 0;
    while (got < len) {
      ssize_t r = ::pread(fd, buf.data() + got, size_t(len - got), off + got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        parse_fail(
            fmt::format("read failed at offset {}: {}", off + got, r < 0 ? std::strerror(errno) : "end of file"));
      got += r;
    }
    return buf;
  }

  int build_node(size_t& idx, int depth, std::vector<int> path) {
    if (idx >= meta.schema.size()) parse_fail("schema has fewer elements than its num_children announce");
    if (depth > 100) parse_fail("schema nested too deeply");
    int me = int(nodes.size());
    nodes.emplace_back();
    nodes.back().e = meta.schema[idx++];
    if (depth > 0) path.push_back(me);
    nodes[me].path = path;
    int nchildren = nodes[me].e.num_children;
    if (nchildren == 0 && depth > 0) {
      if (nodes[me].e.type < 0) parse_fail(fmt::format("schema leaf '{}' has no type", nodes[me].e.name));
      nodes[me].leaf = int(leaves.size());
      leaves.push_back(me);
    }
    for (int k = 0; k < nchildren; k++) {
      int child = build_node(idx, depth + 1, path);
      nodes[me].children.push_back(child);
    }
    return me;
  }

  void build_schema() {
    size_t idx = 0;
    build_node(idx, 0, {});
    if (idx != meta.schema.size()) parse_fail("schema has more elements than its tree uses");
    // Levels and JSON shape, top-down (children always come after their parent in `nodes`).
    std::vector<bool> decided(nodes.size(), false);
    nodes[0].children_keyed = true;
    decided[0] = true;
    for (size_t i = 0; i < nodes.size(); i++) {
      Node& n = nodes[i];
      if (!decided[i] && !n.children.empty()) {
        bool list_like = n.e.logical_list || n.e.logical_map || n.e.converted_type == CV_LIST ||
                         n.e.converted_type == CV_MAP || n.e.converted_type == CV_MAP_KEY_VALUE;
        if (list_like && n.children.size() == 1 && nodes[size_t(n.children[0])].e.repetition == REPEATED) {
          n.children_keyed = false;  // the LIST/MAP wrapper: its repeated child is the array itself
          Node& r = nodes[size_t(n.children[0])];
          // 3-level list: the element is r's only child; otherwise a 2-level list of structs or a map's pairs.
          r.children_keyed = !(r.children.size() == 1 && r.e.name != "array" && r.e.name != n.e.name + "_tuple");
          decided[size_t(n.children[0])] = true;
        } else {
          n.children_keyed = true;
        }
      }
      for (int ci : n.children) {
        Node& c = nodes[size_t(ci)];
        c.max_def = (i == 0 ? 0 : n.max_def) + (c.e.repetition != REQUIRED);
        c.max_rep = (i == 0 ? 0 : n.max_rep) + (c.e.repetition == REPEATED);
        c.keyed = n.children_keyed;
      }
    }
  }

  void open() {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open {}: {}", path.string(), std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) fail("cannot stat {}: {}", path.string(), std::strerror(errno));
    file_size = st.st_size;
    try {
      if (file_size < 12) parse_fail(fmt::format("only {} bytes, too short for a parquet file", file_size));
      std::string head = pread_range(0, 4), tail = pread_range(file_size - 8, 8);
      if (head != "PAR1" || tail.compare(4, 4, "PAR1") != 0)
        parse_fail("missing PAR1 magic (not a parquet file, or truncated)");
      int64_t meta_len = load_u32(reinterpret_cast<const uint8_t*>(tail.data()));
      if (meta_len > file_size - 12) parse_fail("footer length larger than the file");
      meta = decode_file_meta(pread_range(file_size - 8 - meta_len, meta_len));
      build_schema();
      if (leaves.empty()) parse_fail("schema has no columns");
      for (const auto& rg : meta.row_groups) {
        if (rg.columns.size() != leaves.size())
          parse_fail(fmt::format("row group has {} column chunks but the schema has {} columns", rg.columns.size(),
                                 leaves.size()));
        for (size_t k = 0; k < leaves.size(); k++)
          if (rg.columns[k].type != nodes[leaves[k]].e.type) parse_fail("column chunk type differs from the schema");
      }
    } catch (const ParseError& e) {
      corrupt(e.what);
    }
  }

  Column read_column(int rg, int leaf) const {
    const ColumnMeta& m = meta.row_groups[size_t(rg)].columns[size_t(leaf)];
    const Node& node = nodes[size_t(leaves[size_t(leaf)])];
    const int type = node.e.type;
    int64_t start = m.data_page_offset;
    if (m.dictionary_page_offset > 0 && m.dictionary_page_offset < start) start = m.dictionary_page_offset;
    std::string chunk = pread_range(start, m.total_compressed_size);
    if (m.num_values > (int64_t(1) << 31)) parse_fail("implausible value count in a column chunk");
    Column c;
    Column dict;
    bool have_dict = false;
    size_t pos = 0;
    while (c.num_values < m.num_values) {
      if (pos >= chunk.size())
        parse_fail(fmt::format("column chunk ends after {} of {} values", c.num_values, m.num_values));
      size_t hl = 0;
      PageHeader h = decode_page_header(std::string_view(chunk).substr(pos), &hl);
      pos += hl;
      if (uint64_t(h.compressed_size) > chunk.size() - pos) parse_fail("page runs past the end of its column chunk");
      std::string_view body(chunk.data() + pos, size_t(h.compressed_size));
      pos += size_t(h.compressed_size);
      if (h.type == DICTIONARY_PAGE) {
        if (h.encoding != PLAIN && h.encoding != PLAIN_DICTIONARY) parse_fail("dictionary page not PLAIN-encoded");
        std::string raw = decompress(m.codec, body, h.uncompressed_size);
        dict = Column{};
        decode_plain(type, node.e.type_length, reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), h.num_values,
                     dict);
        dict.num_values = h.num_values;
        have_dict = true;
        continue;
      }
      if (h.type != DATA_PAGE && h.type != DATA_PAGE_V2) continue;  // index pages and unknown pages are skipped
      int64_t n = h.num_values;
      if (n > m.num_values - c.num_values) parse_fail("page holds more values than its column chunk");
      std::string raw;
      const uint8_t* p;
      size_t len;
      size_t def_start = c.def.size();
      if (h.type == DATA_PAGE) {
        raw = decompress(m.codec, body, h.uncompressed_size);
        p = reinterpret_cast<const uint8_t*>(raw.data());
        len = raw.size();
        if (node.max_rep > 0) {
          size_t k = read_v1_levels(p, len, h.rep_encoding, node.max_rep, n, c.rep);
          p += k, len -= k;
        }
        if (node.max_def > 0) {
          size_t k = read_v1_levels(p, len, h.def_encoding, node.max_def, n, c.def);
          p += k, len -= k;
        }
      } else {
        uint64_t lv = uint64_t(h.rep_bytes) + uint64_t(h.def_bytes);
        if (lv > body.size() || lv > uint64_t(h.uncompressed_size))
          parse_fail("v2 level sections larger than the page");
        auto lp = reinterpret_cast<const uint8_t*>(body.data());
        if (node.max_rep > 0) decode_hybrid(lp, size_t(h.rep_bytes), bit_width_of(node.max_rep), n, c.rep);
        if (node.max_def > 0)
          decode_hybrid(lp + h.rep_bytes, size_t(h.def_bytes), bit_width_of(node.max_def), n, c.def);
        std::string_view values = body.substr(size_t(lv));
        if (h.is_compressed && m.codec != UNCOMPRESSED) {
          raw = decompress(m.codec, values, int64_t(h.uncompressed_size) - int64_t(lv));
        } else {
          raw = std::string(values);
        }
        p = reinterpret_cast<const uint8_t*>(raw.data());
        len = raw.size();
      }
      int64_t present = n;
      if (node.max_def > 0) {
        present = 0;
        for (size_t k = def_start; k < c.def.size(); k++) present += (c.def[k] == node.max_def);
      }
      if (h.encoding == PLAIN) {
        decode_plain(type, node.e.type_length, p, len, present, c);
      } else if (h.encoding == PLAIN_DICTIONARY || h.encoding == RLE_DICTIONARY) {
        if (!have_dict) parse_fail("dictionary-encoded page without a dictionary page");
        std::vector<uint32_t> idx;
        if (present > 0) {
          if (len < 1) parse_fail("truncated dictionary indices");
          decode_hybrid(p + 1, len - 1, p[0], present, idx);
        }
        for (uint32_t k : idx) {
          if (int64_t(k) >= dict.num_values) parse_fail("dictionary index out of range");
          if (!dict.s.empty())
            c.s.push_back(dict.s[k]);
          else if (!dict.i.empty())
            c.i.push_back(dict.i[k]);
          else
            c.d.push_back(dict.d[k]);
        }
      } else if (h.encoding == RLE && type == BOOLEAN) {
        if (len < 4) parse_fail("truncated RLE booleans");
        uint32_t l = load_u32(p);
        if (l > len - 4) parse_fail("RLE booleans run past the end of the page");
        decode_hybrid(p + 4, l, 1, present, c.i);
      } else if (h.encoding == 5 && (type == INT32 || type == INT64)) {  // DELTA_BINARY_PACKED
        std::vector<int64_t> v;
        decode_delta_binary(p, len, v);
        if (int64_t(v.size()) < present) parse_fail("DELTA_BINARY_PACKED page holds too few values");
        for (int64_t k = 0; k < present; k++)
          c.i.push_back(type == INT32 ? int64_t(int32_t(v[size_t(k)])) : v[size_t(k)]);
      } else if ((h.encoding == 6 || h.encoding == 7) && type == BYTE_ARRAY) {  // DELTA_LENGTH_ / DELTA_BYTE_ARRAY
        decode_delta_strings(p, len, present, h.encoding == 7, c.s);
      } else {
        parse_fail(
            fmt::format("value encoding {} is not supported (PLAIN, dictionary and DELTA encodings are)", h.encoding));
      }
      c.num_values += n;
    }
    return c;
  }

  int top_level(const std::string& name) const {
    for (int ci : nodes[0].children)
      if (nodes[ci].e.name == name) return ci;
    std::string have;
    for (int ci : nodes[0].children) have += (have.empty() ? "" : ", ") + nodes[ci].e.name;
    fail("{}: no column '{}' (columns: {})", path.string(), name, have);
  }

  void check_rg(int rg) const {
    if (rg < 0 || rg >= int(meta.row_groups.size()))
      fail("{}: row group {} out of range (the file has {})", path.string(), rg, meta.row_groups.size());
  }

  json value_json(const Column& c, size_t& vi, int type) const {
    size_t k = vi++;
    switch (type) {
      case BOOLEAN:
        return c.i.at(k) != 0;
      case INT32:
      case INT64:
        return c.i.at(k);
      case FLOAT:
      case DOUBLE:
        return c.d.at(k);
      default:
        return c.s.at(k);
    }
  }

  // Assembles one leaf column into per-row skeletons (see the file comment).
  std::vector<json> assemble(const Column& c, int leaf_node, int64_t num_rows) const {
    const Node& leaf = nodes[size_t(leaf_node)];
    std::vector<json> rows;
    rows.reserve(size_t(num_rows));
    size_t vi = 0;
    for (int64_t t = 0; t < c.num_values; t++) {
      int r = leaf.max_rep ? c.rep[size_t(t)] : 0;
      int d = leaf.max_def ? c.def[size_t(t)] : leaf.max_def;
      if (r > leaf.max_rep || d > leaf.max_def) parse_fail("level larger than its maximum");
      if (r == 0) rows.emplace_back(json::object());
      if (rows.empty()) parse_fail("first value continues a row that does not exist");
      json* cur = &rows.back();
      int lvl_d = 0, lvl_r = 0;
      bool done = false;
      for (int ni : leaf.path) {
        const Node& n = nodes[size_t(ni)];
        if (n.keyed) {
          if (cur->is_null()) *cur = json::object();
          if (!cur->is_object()) parse_fail("inconsistent nesting levels");
          cur = &(*cur)[n.e.name];
        }
        if (n.e.repetition == REPEATED) {
          lvl_d++, lvl_r++;
          if (cur->is_null()) *cur = json::array();
          if (!cur->is_array()) parse_fail("inconsistent nesting levels");
          if (d < lvl_d) {
            done = true;
            break;
          }  // an empty list
          if (lvl_r < r) {
            if (cur->empty()) parse_fail("repetition level continues an empty list");
            cur = &cur->back();
          } else {
            cur->push_back(nullptr);
            cur = &cur->back();
          }
        } else if (n.e.repetition == OPTIONAL) {
          lvl_d++;
          if (d < lvl_d) {
            done = true;
            break;
          }  // null here (cur stays null)
        }
      }
      if (!done) *cur = value_json(c, vi, leaf.e.type);
    }
    if (int64_t(rows.size()) != num_rows)
      parse_fail(fmt::format("column has {} rows but its row group has {}", rows.size(), num_rows));
    return rows;
  }
};

namespace {
void merge_json(json& dst, json& src) {
  if (dst.is_object() && src.is_object()) {
    for (auto it = src.begin(); it != src.end(); ++it) {
      auto found = dst.find(it.key());
      if (found == dst.end())
        dst[it.key()] = std::move(it.value());
      else
        merge_json(*found, it.value());
    }
  } else if (dst.is_array() && src.is_array()) {
    if (dst.size() != src.size()) parse_fail("sibling columns disagree on list lengths");
    for (size_t k = 0; k < dst.size(); k++) merge_json(dst[k], src[k]);
  } else if (dst.is_null()) {
    dst = std::move(src);
  }
}

template <typename F>
auto guarded(const ParquetFile::Impl& impl, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ParseError& e) {
    impl.corrupt(e.what);
  } catch (const std::bad_alloc&) {
    impl.corrupt("out of memory while decoding (implausible sizes)");
  } catch (const std::length_error&) {
    impl.corrupt("implausible sizes");
  } catch (const std::out_of_range&) {
    impl.corrupt("fewer values than its levels announce");
  } catch (const json::exception& e) {
    impl.corrupt(e.what());
  }
}
}  // namespace

ParquetFile::ParquetFile(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  guarded(*impl_, [&] { impl_->open(); });
}
ParquetFile::~ParquetFile() = default;
ParquetFile::ParquetFile(ParquetFile&&) noexcept = default;
ParquetFile& ParquetFile::operator=(ParquetFile&&) noexcept = default;

const std::filesystem::path& ParquetFile::path() const { return impl_->path; }
int64_t ParquetFile::num_rows() const { return impl_->meta.num_rows; }
int ParquetFile::num_row_groups() const { return int(impl_->meta.row_groups.size()); }
int64_t ParquetFile::row_group_num_rows(int rg) const {
  impl_->check_rg(rg);
  return impl_->meta.row_groups[size_t(rg)].num_rows;
}
std::vector<std::string> ParquetFile::column_names() const {
  std::vector<std::string> names;
  for (int ci : impl_->nodes[0].children) names.push_back(impl_->nodes[size_t(ci)].e.name);
  return names;
}

std::vector<std::string> ParquetFile::read_strings(int rg, const std::string& column) const {
  const Impl& im = *impl_;
  im.check_rg(rg);
  int top = im.top_level(column);
  const Node& n = im.nodes[size_t(top)];
  if (n.leaf < 0 || n.max_rep > 0 || (n.e.type != BYTE_ARRAY && n.e.type != FIXED_LEN_BYTE_ARRAY))
    fail("{}: column '{}' is not a flat string column (use read_rows)", im.path.string(), column);
  return guarded(im, [&] {
    Column c = im.read_column(rg, n.leaf);
    int64_t rows = im.meta.row_groups[size_t(rg)].num_rows;
    if (c.num_values != rows)
      parse_fail(fmt::format("column has {} values but its row group has {} rows", c.num_values, rows));
    if (int64_t(c.s.size()) != c.num_values)
      fail("{}: column '{}' has {} nulls in row group {}; expected text in every row", im.path.string(), column,
           c.num_values - int64_t(c.s.size()), rg);
    return std::move(c.s);
  });
}

std::vector<json> ParquetFile::read_rows(int rg, const std::vector<std::string>& columns) const {
  const Impl& im = *impl_;
  im.check_rg(rg);
  std::vector<int> tops;
  if (columns.empty())
    tops = im.nodes[0].children;
  else
    for (const auto& c : columns) tops.push_back(im.top_level(c));
  return guarded(im, [&] {
    int64_t num_rows = im.meta.row_groups[size_t(rg)].num_rows;
    std::vector<json> rows(size_t(num_rows), json::object());
    for (size_t li = 0; li < im.leaves.size(); li++) {
      const Node& leaf = im.nodes[size_t(im.leaves[li])];
      if (std::find(tops.begin(), tops.end(), leaf.path.front()) == tops.end()) continue;
      Column c = im.read_column(rg, int(li));
      std::vector<json> part = im.assemble(c, im.leaves[li], num_rows);
      for (size_t r = 0; r < rows.size(); r++) merge_json(rows[r], part[r]);
    }
    return rows;
  });
}

}  // namespace nanochat
