// common: see common.h.
#include "nanochat/common.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <vector>

namespace nanochat {

namespace fs = std::filesystem;

std::string getenv_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

fs::path get_base_dir() {
  fs::path dir;
  if (const char* v = std::getenv("NANOCHAT_BASE_DIR"); v && *v) {
    dir = v;
  } else {
    const char* home = std::getenv("HOME");
    dir = fs::path(home && *home ? home : ".") / ".cache" / "nanochat";
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    fail("cannot create base dir {}: {} (set NANOCHAT_BASE_DIR to a writable directory)", dir.string(), ec.message());
  return dir;
}

int env_rank() {
  const char* v = std::getenv("RANK");
  return v && *v ? std::atoi(v) : 0;
}

bool is_master_process() { return env_rank() == 0; }

void print0(std::string_view s) {
  if (env_rank() != 0) return;
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open {}: {}", path.string(), std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail("error reading {}", path.string());
  return data;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

namespace {

int64_t g_fault_after = -2;  // -2: not read yet, -1: off
int64_t g_fault_written = 0;

// Every byte of an atomic write goes through here, so NANOCHAT_FAULT_SAVE_AFTER_BYTES can cut a save anywhere.
void write_counted(int fd, const char* p, size_t n) {
  if (g_fault_after == -2) {
    const char* v = std::getenv("NANOCHAT_FAULT_SAVE_AFTER_BYTES");
    g_fault_after = (v && *v) ? std::atoll(v) : -1;
  }
  size_t allowed = n;
  bool die = false;
  if (g_fault_after >= 0 && g_fault_written + int64_t(n) >= g_fault_after) {
    allowed = size_t(std::max<int64_t>(0, g_fault_after - g_fault_written));
    die = true;
  }
  size_t off = 0;
  while (off < allowed) {
    ssize_t k = ::write(fd, p + off, allowed - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail("write failed: {}", std::strerror(errno));
    }
    off += size_t(k);
  }
  g_fault_written += int64_t(allowed);
  if (die) ::kill(::getpid(), SIGKILL);
}

}  // namespace

void fault_injection_reset() {
  g_fault_after = -2;
  g_fault_written = 0;
}

void write_file_atomic_with(const fs::path& path, const std::function<void(const ChunkWriter&)>& produce) {
  fs::path tmp = path;
  tmp += ".tmp";
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  // O_CLOEXEC: a child started meanwhile (the code sandbox, a tokenizer worker) must not inherit the file.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
  try {
    produce([&](const void* data, size_t size) { write_counted(fd, static_cast<const char*>(data), size); });
    if (::fsync(fd) != 0) fail("fsync failed: {}", std::strerror(errno));
  } catch (const std::exception& e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot write {}: {}", path.string(), e.what());
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot write {}: {}", path.string(), std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp.string(), path.string(), std::strerror(err));
  }
  fsync_dir(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  write_file_atomic_with(path, [&](const ChunkWriter& w) { w(bytes.data(), bytes.size()); });
}

std::string python_float_str(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0.0) return std::signbit(x) ? "-0.0" : "0.0";
  // Shortest round-trip digits d1 d2 ... dn and the decimal exponent e: x = d1.d2...dn × 10^e, as
  // CPython's float_repr_style 'short' gets them from _Py_dg_dtoa.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  int e = std::atoi(sci.c_str() + epos + 1);
  std::string digits;
  for (size_t i = 0; i < epos; i++)
    if (sci[i] != '.') digits.push_back(sci[i]);
  std::string out = neg ? "-" : "";
  int ndig = int(digits.size());
  if (e < -4 || e >= 16) {
    out += digits.substr(0, 1);
    if (ndig > 1) out += "." + digits.substr(1);
    return out + fmt::format("e{}{:02d}", e < 0 ? '-' : '+', std::abs(e));
  }
  if (e < 0) return out + "0." + std::string(size_t(-e - 1), '0') + digits;
  int int_digits = e + 1;
  if (ndig <= int_digits) return out + digits + std::string(size_t(int_digits - ndig), '0') + ".0";
  return out + digits.substr(0, size_t(int_digits)) + "." + digits.substr(size_t(int_digits));
}

std::string format_local_time(std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

double round_half_even(double x) {
  // nearbyint follows the current rounding mode, which is round-to-nearest-even by default.
  return std::nearbyint(x);
}

double get_peak_flops(const std::string& device_name) {
  std::string name = device_name;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  struct Row {
    std::vector<const char*> parts;
    double flops;
  };
  // Order matters: the first row whose substrings all occur wins (nanochat/common.py get_peak_flops).
  static const std::vector<Row> table = {
      {{"gb200"}, 2.5e15},        {{"grace blackwell"}, 2.5e15},
      {{"b200"}, 2.25e15},        {{"b100"}, 1.8e15},
      {{"h200", "nvl"}, 836e12},  {{"h200", "pcie"}, 836e12},
      {{"h200"}, 989e12},         {{"h100", "nvl"}, 835e12},
      {{"h100", "pcie"}, 756e12}, {{"h100"}, 989e12},
      {{"h800", "nvl"}, 989e12},  {{"h800"}, 756e12},
      {{"a100"}, 312e12},         {{"a800"}, 312e12},
      {{"a40"}, 149.7e12},        {{"a30"}, 165e12},
      {{"l40s"}, 362e12},         {{"l40-s"}, 362e12},
      {{"l40 s"}, 362e12},        {{"l4"}, 121e12},
      {{"mi355"}, 2.5e15},        {{"mi325"}, 1.3074e15},
      {{"mi300x"}, 1.3074e15},    {{"mi300a"}, 980.6e12},
      {{"mi250x"}, 383e12},       {{"mi250"}, 362.1e12},
      {{"5090"}, 209.5e12},       {{"4090"}, 165.2e12},
      {{"3090"}, 71e12},
  };
  for (const auto& row : table) {
    bool all = std::all_of(row.parts.begin(), row.parts.end(),
                           [&](const char* p) { return name.find(p) != std::string::npos; });
    if (all) return row.flops;
  }
  return std::numeric_limits<double>::infinity();
}

}  // namespace nanochat
