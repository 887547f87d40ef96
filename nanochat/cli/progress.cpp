// progress: see progress.h.
#include "nanochat/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "nanochat/common.h"

namespace nanochat {

namespace {

constexpr int kBarWidth = 20;
constexpr double kTerminalRedrawSeconds = 0.1;
constexpr double kPlainEverySeconds = 10.0;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The bar with eighth-block partial cells, so it moves smoothly even when 1 cell = 5%.
std::string draw_bar(double frac) {
  static const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  frac = std::clamp(frac, 0.0, 1.0);
  int eighths = int(frac * kBarWidth * 8);
  int full = eighths / 8, part = eighths % 8;
  std::string bar;
  for (int i = 0; i < full; i++) bar += "█";
  int cells = full;
  if (part > 0 && cells < kBarWidth) {
    bar += kEighths[part];
    cells++;
  }
  bar.append(size_t(kBarWidth - cells), ' ');
  return bar;
}

}  // namespace

std::string format_interval(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int64_t s = int64_t(seconds);
  int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h > 0) return fmt::format("{}:{:02d}:{:02d}", h, m, sec);
  return fmt::format("{:02d}:{:02d}", m, sec);
}

std::string format_si(double value) {
  static const char* kSuffix[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (std::fabs(value) >= 999.5 && i < 5) {
    value /= 1000.0;
    i++;
  }
  if (i == 0) return fmt::format("{:.0f}", value);
  return fmt::format("{:.{}f}{}", value, std::fabs(value) < 9.995 ? 2 : (std::fabs(value) < 99.95 ? 1 : 0), kSuffix[i]);
}

Progress::Progress(std::string desc, int64_t total, std::string unit, std::FILE* out, Style style, bool enabled)
    : desc_(std::move(desc)), unit_(std::move(unit)), total_(std::max<int64_t>(total, 0)), out_(out) {
  enabled_ = enabled && out_ != nullptr && is_master_process();
  terminal_ = style == Style::Terminal || (style == Style::Auto && out_ && ::isatty(::fileno(out_)));
  start_ = last_draw_ = std::chrono::steady_clock::now();
  if (enabled_ && terminal_) maybe_draw(true);
}

Progress::~Progress() { close(); }

void Progress::update(int64_t n) { set(done_ + n); }

void Progress::set(int64_t done) {
  done_ = done;
  maybe_draw(false);
}

void Progress::set_total(int64_t total) { total_ = std::max<int64_t>(total, 0); }

std::string Progress::render(double elapsed) const {
  bool bytes = unit_ == "B";
  auto count = [&](double v) { return bytes ? format_si(v) : fmt::format("{}", int64_t(v)); };
  double rate = elapsed > 0 ? double(done_) / elapsed : 0.0;
  std::string rate_value = elapsed > 0 && done_ > 0 ? (bytes ? format_si(rate) : fmt::format("{:.2f}", rate)) : "?";
  std::string rate_str = bytes ? fmt::format("{}B/s", rate_value) : fmt::format("{} {}/s", rate_value, unit_);
  std::string head = desc_.empty() ? "" : desc_ + ": ";
  if (total_ <= 0) {
    return fmt::format("{}{}{} [{}, {}]", head, count(double(done_)), bytes ? "B" : " " + unit_,
                       format_interval(elapsed), rate_str);
  }
  double frac = double(done_) / double(total_);
  int pct = int(std::floor(std::clamp(frac, 0.0, 1.0) * 100.0));
  double eta = rate > 0 ? double(std::max<int64_t>(total_ - done_, 0)) / rate : -1;
  std::string bar = terminal_ ? " |" + draw_bar(frac) + "|" : "";
  return fmt::format("{}{:3d}%{} {}/{}{} [{}<{}, {}]", head, pct, bar, count(double(done_)), count(double(total_)),
                     bytes ? "B" : "", format_interval(elapsed), format_interval(eta), rate_str);
}

void Progress::maybe_draw(bool force) {
  if (!enabled_ || closed_) return;
  double since_draw = seconds_since(last_draw_);
  if (terminal_) {
    if (!force && since_draw < kTerminalRedrawSeconds && !(total_ > 0 && done_ >= total_)) return;
    std::string line = render(seconds_since(start_));
    // Pad over a longer previous line so no stale characters remain after \r.
    size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');
    last_width_ = width;
    std::fprintf(out_, "\r%s", line.c_str());
    std::fflush(out_);
    last_draw_ = std::chrono::steady_clock::now();
    return;
  }
  // Plain output: one line per 10% step or every 10 s, never a line per update.
  int decile = total_ > 0 ? int(std::floor(std::clamp(double(done_) / double(total_), 0.0, 1.0) * 10.0)) : -1;
  bool new_decile = total_ > 0 && decile > last_decile_ && decile > 0;
  if (!force && !new_decile && since_draw < kPlainEverySeconds) return;
  if (total_ > 0) last_decile_ = std::max(last_decile_, decile);
  std::string line = render(seconds_since(start_));
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
  last_draw_ = std::chrono::steady_clock::now();
}

void Progress::close() {
  if (closed_) return;
  if (enabled_) {
    if (terminal_) {
      maybe_draw(true);
      std::fputc('\n', out_);
      std::fflush(out_);
    } else if (total_ <= 0 || last_decile_ < 10) {
      maybe_draw(true);  // the final count, unless the 100% line was already printed
    }
  }
  closed_ = true;
}

}  // namespace nanochat
