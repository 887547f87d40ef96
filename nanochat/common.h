// common: small utilities every part of nanochat uses and that need no tensors —
// the base directory, rank-0 printing, user-facing errors, atomic file writes, Python-compatible rounding
// and the peak-FLOPS table used for MFU. The libtorch half (device, dtype, process groups) is in compute.h.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/core.h>

namespace nanochat {

// An error caused by the user's input (a flag, a file, a request). main() prints it as one line
// "error: <what>" and exits 1 — no stack trace. The message should name the problem and the fix.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// $NANOCHAT_BASE_DIR if set and non-empty, else ~/.cache/nanochat; created on every call (as Python does).
std::filesystem::path get_base_dir();

// Distributed rank from the launcher's environment (RANK, default 0).
int env_rank();
bool is_master_process();

// print only on rank 0 (nanochat's print0), with a trailing newline and an immediate flush.
void print0(std::string_view s);
template <typename... Args>
void print0f(fmt::format_string<Args...> f, Args&&... args) {
  print0(fmt::format(f, std::forward<Args>(args)...));
}

// Whole-file I/O. read_file fails with an Error naming the path.
std::string read_file(const std::filesystem::path& path);
// Writes to "<path>.tmp", fsyncs, renames over path, then fsyncs the directory: a reader never sees a
// half-written file under the final name, even after a crash or SIGKILL. The _with form takes a producer that
// emits the content in chunks (a checkpoint is written without holding its bytes twice).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);
using ChunkWriter = std::function<void(const void* data, size_t size)>;
void write_file_atomic_with(const std::filesystem::path& path, const std::function<void(const ChunkWriter&)>& produce);
void fsync_dir(const std::filesystem::path& dir);
// Crash testing: when NANOCHAT_FAULT_SAVE_AFTER_BYTES=N is set, the process SIGKILLs itself once N bytes in total
// have been written by write_file_atomic* (counted across all files this process saves), mid-write.
void fault_injection_reset();  // re-reads the variable and zeroes the count (tests)

// Python's str() of a float, which is also its repr(): the shortest digits that round-trip, in fixed notation for
// decimal exponents -5 < e < 16 and scientific otherwise ("0.1", "3.0", "1e-05", "1e+16"), "nan", "inf", "-inf".
std::string python_float_str(double x);
// "YYYY-MM-DD HH:MM:SS" in local time, as Python's datetime.now().strftime("%Y-%m-%d %H:%M:%S").
std::string format_local_time(std::time_t t);

// Python's round(): round half to even.
double round_half_even(double x);
// Python's floor division for integers.
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

std::string getenv_or(const char* name, const std::string& fallback);

// Peak bf16 FLOP/s for a device name (nanochat's table, nanochat/common.py get_peak_flops); +inf when unknown.
double get_peak_flops(const std::string& device_name);

}  // namespace nanochat
