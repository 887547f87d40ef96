// metrics: what chat_web counts for GET /metrics (--metrics), in Prometheus' text exposition format 0.0.4.
//   ServerMetrics m;
//   m.request_done("/v1/chat/completions", 200);          // per finished HTTP request
//   m.generation_done(prompt_tokens, completion_tokens, ttft_s, per_token_s);
//   std::string text = m.render({{"nanochat_queue_depth", "requests waiting for a slot", 3.0}}, prefix_cache_stats);
// Counters and histograms are cumulative since the server started; gauges (queue depth, busy slots) are read
// from the worker pool at scrape time and passed to render(), as are the models' prefix-cache counts (summed over
// workers). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "nanochat/prefix_cache_stats.h"

namespace nanochat {

// A cumulative histogram with fixed upper bounds (seconds), as Prometheus' client libraries keep one.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // name_bucket{le="..."} lines (cumulative, +Inf last), name_sum and name_count; the caller holds the lock.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last one is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Gauge {
  std::string name, help;
  double value;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void request_done(const std::string& path, int status);
  void generation_done(int64_t prompt_tokens, int64_t completion_tokens, double ttft_s, double per_token_s);
  std::string render(const std::vector<Gauge>& gauges, const PrefixCacheStats& prefix_cache) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (path, status) -> count
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0, generations_ = 0;
  Histogram ttft_, per_token_;
};

}  // namespace nanochat
