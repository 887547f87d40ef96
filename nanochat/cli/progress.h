// progress: a progress bar for long loops (downloads, tokenization, evaluation) — percent, rate and ETA.
//
//   nanochat::Progress bar{"Downloading shard_00012", total_bytes, "B"};   // unit "B" shows KB/MB/GB
//   while (...) bar.update(n);                                           // add n done units
//   bar.close();                                                         // final line (also done by ~Progress)
//
//   Downloading shard_00012  42% |████████▍           | 39.9M/95.1M [00:03<00:04, 12.1MB/s]
//
// On a terminal it redraws one line with \r (at most 10 times a second). When output is not a terminal (a log
// file, `| tee`, CI) it prints a plain line instead each time another 10% is done or 10 s have passed, so logs
// stay readable. total = 0 means unknown: count and rate only. Prints on rank 0 only, to stderr by default.
// Not covered: nested bars, several bars at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace nanochat {

// "00:07", "1:02:03"; "?" for a negative or non-finite number of seconds.
std::string format_interval(double seconds);
// 123 -> "123", 39900000 -> "39.9M" (SI, like tqdm's unit_scale); used for unit "B" and big counts.
std::string format_si(double value);

class Progress {
 public:
  enum class Style { Auto, Terminal, Plain };
  // desc: label in front; total: units to do (0 = unknown); unit: "it", "B", "docs", ...;
  // out: where to print; style Auto = Terminal if out is a terminal, else Plain.
  Progress(std::string desc, int64_t total, std::string unit = "it", std::FILE* out = stderr, Style style = Style::Auto,
           bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t n = 1);
  void set(int64_t done);  // jump to an absolute count
  void set_total(int64_t total);
  void close();  // print the final state (once)

  int64_t done() const { return done_; }
  // The line as it would be drawn now (no \r, no newline); exposed for tests.
  std::string render(double elapsed_seconds) const;

 private:
  void maybe_draw(bool force);
  std::string desc_, unit_;
  int64_t total_ = 0, done_ = 0;
  std::FILE* out_;
  bool terminal_ = false, enabled_ = true, closed_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;  // plain mode: the last 10% step printed
  size_t last_width_ = 0;
};

}  // namespace nanochat
