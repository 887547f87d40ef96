// common: see common.h.
#include "nanochat/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
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
  if (ec) fail("cannot create base dir {}: {} (set NANOCHAT_BASE_DIR to a writable directory)", dir.string(), ec.message());
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

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  fs::path tmp = path;
  tmp += ".tmp";
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write {}: {}", tmp.string(), std::strerror(err));
    }
    off += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot flush {}: {}", tmp.string(), std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp.string(), path.string(), std::strerror(err));
  }
  fsync_dir(path.parent_path());
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
  // Order matters: the first row whose substrings all occur wins (SPEC §2.5).
  static const std::vector<Row> table = {
      {{"gb200"}, 2.5e15},        {{"grace blackwell"}, 2.5e15}, {{"b200"}, 2.25e15},
      {{"b100"}, 1.8e15},         {{"h200", "nvl"}, 836e12},     {{"h200", "pcie"}, 836e12},
      {{"h200"}, 989e12},         {{"h100", "nvl"}, 835e12},     {{"h100", "pcie"}, 756e12},
      {{"h100"}, 989e12},         {{"h800", "nvl"}, 989e12},     {{"h800"}, 756e12},
      {{"a100"}, 312e12},         {{"a800"}, 312e12},            {{"a40"}, 149.7e12},
      {{"a30"}, 165e12},          {{"l40s"}, 362e12},            {{"l40-s"}, 362e12},
      {{"l40 s"}, 362e12},        {{"l4"}, 121e12},              {{"mi355"}, 2.5e15},
      {{"mi325"}, 1.3074e15},     {{"mi300x"}, 1.3074e15},       {{"mi300a"}, 980.6e12},
      {{"mi250x"}, 383e12},       {{"mi250"}, 362.1e12},         {{"5090"}, 209.5e12},
      {{"4090"}, 165.2e12},       {{"3090"}, 71e12},
  };
  for (const auto& row : table) {
    bool all = std::all_of(row.parts.begin(), row.parts.end(),
                           [&](const char* p) { return name.find(p) != std::string::npos; });
    if (all) return row.flops;
  }
  return std::numeric_limits<double>::infinity();
}

}  // namespace nanochat
