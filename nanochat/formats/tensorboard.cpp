// tensorboard: see tensorboard.h.
#include "nanochat/formats/tensorboard.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "nanochat/common.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli polynomial
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// --- protobuf wire format: just what tensorflow.Event / Summary / Summary.Value need ---
enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
void put_key(std::string& out, int field, WireType type) { put_varint(out, (uint64_t(field) << 3) | type); }
void put_fixed(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}  // little-endian host
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

struct Reader {
  std::string_view buf;
  size_t pos = 0;
  bool done() const { return pos >= buf.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) fail("event record: truncated varint");
      uint8_t b = uint8_t(buf[pos++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("event record: varint longer than 10 bytes");
  }
  std::string_view take(size_t n) {
    if (n > buf.size() - pos) fail("event record: field runs past the end of the record");
    auto s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  // Reads one field's payload; returns the wire type so the caller can interpret it.
  void skip(int type) {
    switch (type) {
      case kVarint:
        varint();
        break;
      case kFixed64:
        take(8);
        break;
      case kLengthDelimited:
        take(varint());
        break;
      case kFixed32:
        take(4);
        break;
      default:
        fail("event record: unsupported protobuf wire type {}", type);
    }
  }
};

template <typename T>
T read_le(std::string_view bytes) {
  T v;
  std::memcpy(&v, bytes.data(), sizeof(T));
  return v;
}

std::string encode_value(const std::string& tag, float value) {
  std::string v;
  put_bytes(v, 1, tag);     // Summary.Value.tag
  put_key(v, 2, kFixed32);  // Summary.Value.simple_value
  put_fixed(v, &value, 4);
  return v;
}

std::pair<std::string, float> decode_value(std::string_view bytes, bool& has_simple) {
  Reader r{bytes};
  std::pair<std::string, float> out{"", 0.f};
  has_simple = false;
  while (!r.done()) {
    uint64_t key = r.varint();
    int field = int(key >> 3), type = int(key & 7);
    if (field == 1 && type == kLengthDelimited) {
      out.first = std::string(r.take(r.varint()));
    } else if (field == 2 && type == kFixed32) {
      out.second = read_le<float>(r.take(4));
      has_simple = true;
    } else {
      r.skip(type);
    }
  }
  return out;
}

std::atomic<int> g_file_counter{0};

}  // namespace

uint32_t crc32c(std::string_view data) {
  const auto& table = crc32c_table();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view data) {
  uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string encode_event(const TbEvent& event) {
  std::string out;
  put_key(out, 1, kFixed64);  // Event.wall_time
  put_fixed(out, &event.wall_time, 8);
  if (event.step != 0) {  // proto3 default values are left out, as protobuf itself does
    put_key(out, 2, kVarint);
    put_varint(out, uint64_t(event.step));
  }
  if (!event.file_version.empty()) put_bytes(out, 3, event.file_version);
  if (!event.scalars.empty()) {
    std::string summary;
    for (const auto& [tag, value] : event.scalars) put_bytes(summary, 1, encode_value(tag, value));
    put_bytes(out, 5, summary);  // Event.summary
  }
  return out;
}

TbEvent decode_event(std::string_view bytes) {
  TbEvent ev;
  Reader r{bytes};
  while (!r.done()) {
    uint64_t key = r.varint();
    int field = int(key >> 3), type = int(key & 7);
    if (field == 1 && type == kFixed64) {
      ev.wall_time = read_le<double>(r.take(8));
    } else if (field == 2 && type == kVarint) {
      ev.step = int64_t(r.varint());
    } else if (field == 3 && type == kLengthDelimited) {
      ev.file_version = std::string(r.take(r.varint()));
    } else if (field == 5 && type == kLengthDelimited) {
      Reader s{r.take(r.varint())};
      while (!s.done()) {
        uint64_t k = s.varint();
        if ((k >> 3) == 1 && (k & 7) == kLengthDelimited) {
          bool has_simple = false;
          auto value = decode_value(s.take(s.varint()), has_simple);
          if (has_simple) ev.scalars.push_back(std::move(value));
        } else {
          s.skip(int(k & 7));
        }
      }
    } else {
      r.skip(type);
    }
  }
  return ev;
}

std::string frame_record(std::string_view data) {
  std::string out;
  uint64_t len = data.size();
  std::string len_bytes(reinterpret_cast<const char*>(&len), 8);
  uint32_t len_crc = masked_crc32c(len_bytes);
  uint32_t data_crc = masked_crc32c(data);
  out.reserve(16 + data.size());
  out += len_bytes;
  put_fixed(out, &len_crc, 4);
  out.append(data);
  put_fixed(out, &data_crc, 4);
  return out;
}

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventWriter::EventWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create TensorBoard log dir {}: {}", dir.string(), ec.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  path_ = dir /
          fmt::format("events.out.tfevents.{}.{}.{}.{}", int64_t(unix_time_now()), host, ::getpid(), g_file_counter++);
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) fail("cannot write TensorBoard event file {}: {}", path_.string(), std::strerror(errno));
  TbEvent first;
  first.wall_time = unix_time_now();
  first.file_version = "brain.Event:2";
  write_event(first);
  flush();
}

EventWriter::~EventWriter() { close(); }

void EventWriter::write_event(const TbEvent& event) {
  if (!file_) fail("TensorBoard event file {} is already closed", path_.string());
  std::string rec = frame_record(encode_event(event));
  if (std::fwrite(rec.data(), 1, rec.size(), file_) != rec.size())
    fail("cannot write TensorBoard event file {}: {}", path_.string(), std::strerror(errno));
}

void EventWriter::add_scalars(int64_t step, const std::map<std::string, double>& scalars, double wall_time) {
  TbEvent ev;
  ev.wall_time = wall_time < 0 ? unix_time_now() : wall_time;
  ev.step = step;
  for (const auto& [tag, value] : scalars) ev.scalars.emplace_back(tag, float(value));
  write_event(ev);
  // Flushed per event so a live `tensorboard` sees progress and a crash loses nothing already logged.
  flush();
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  add_scalars(step, {{tag, value}}, wall_time);
}

void EventWriter::flush() {
  if (file_) std::fflush(file_);
}

void EventWriter::close() {
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

std::vector<TbEvent> read_events(const fs::path& path) {
  std::string data = read_file(path);
  std::vector<TbEvent> events;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 12) break;  // truncated header of a record still being written
    std::string_view len_bytes(data.data() + pos, 8);
    uint64_t len = read_le<uint64_t>(len_bytes);
    if (read_le<uint32_t>(std::string_view(data.data() + pos + 8, 4)) != masked_crc32c(len_bytes))
      fail("{}: corrupt TensorBoard event file (length CRC mismatch at byte {})", path.string(), pos);
    if (len > data.size() - pos - 12 || data.size() - pos - 12 - len < 4) break;  // truncated body
    std::string_view body(data.data() + pos + 12, len);
    if (read_le<uint32_t>(std::string_view(data.data() + pos + 12 + len, 4)) != masked_crc32c(body))
      fail("{}: corrupt TensorBoard event file (data CRC mismatch at byte {})", path.string(), pos);
    events.push_back(decode_event(body));
    pos += 16 + len;
  }
  return events;
}

}  // namespace nanochat
