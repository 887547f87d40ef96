// metrics: see metrics.h.
#include "nanochat/serve/metrics.h"

#include <fmt/format.h>

#include "nanochat/common.h"

namespace nanochat {

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) i++;
  counts_[i]++;
  sum_ += v;
  count_++;
}

void Histogram::render(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); i++) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? python_float_str(bounds_[i]) : "+Inf";
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, le, cumulative);
  }
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, python_float_str(sum_), name, count_);
}

ServerMetrics::ServerMetrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      per_token_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void ServerMetrics::request_done(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{path, status}]++;
}

void ServerMetrics::generation_done(int64_t prompt_tokens, int64_t completion_tokens, double ttft_s,
                                    double per_token_s) {
  std::lock_guard<std::mutex> lock(mu_);
  generations_++;
  prompt_tokens_ += uint64_t(std::max<int64_t>(0, prompt_tokens));
  completion_tokens_ += uint64_t(std::max<int64_t>(0, completion_tokens));
  if (ttft_s >= 0) ttft_.observe(ttft_s);
  if (per_token_s >= 0) per_token_.observe(per_token_s);
}

std::string ServerMetrics::render(const std::vector<Gauge>& gauges, const PrefixCacheStats& pc) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  header("nanochat_http_requests_total", "counter", "HTTP requests answered, by endpoint and status");
  for (const auto& [key, n] : requests_)
    out += fmt::format("nanochat_http_requests_total{{path=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  header("nanochat_generations_total", "counter", "replies the model generated (finished, cancelled or failed)");
  out += fmt::format("nanochat_generations_total {}\n", generations_);
  header("nanochat_prompt_tokens_total", "counter", "prompt tokens of the generated replies");
  out += fmt::format("nanochat_prompt_tokens_total {}\n", prompt_tokens_);
  header("nanochat_generated_tokens_total", "counter", "tokens generated");
  out += fmt::format("nanochat_generated_tokens_total {}\n", completion_tokens_);
  header("nanochat_time_to_first_token_seconds", "histogram",
         "from the request's arrival (queue included) to its first generated token");
  ttft_.render(out, "nanochat_time_to_first_token_seconds");
  header("nanochat_time_per_output_token_seconds", "histogram", "mean time per generated token after the first");
  per_token_.render(out, "nanochat_time_per_output_token_seconds");
  header("nanochat_prefix_cache_lookups_total", "counter", "prompts looked up in the prefix cache");
  out += fmt::format("nanochat_prefix_cache_lookups_total {}\n", pc.lookups);
  header("nanochat_prefix_cache_hits_total", "counter", "prompts that started from a cached prefix");
  out += fmt::format("nanochat_prefix_cache_hits_total {}\n", pc.hits);
  header("nanochat_prefix_cache_tokens_saved_total", "counter", "prompt tokens taken from the cache, not prefilled");
  out += fmt::format("nanochat_prefix_cache_tokens_saved_total {}\n", pc.tokens_saved);
  header("nanochat_prefix_cache_bytes", "gauge", "memory the prefix cache holds, over all workers");
  out += fmt::format("nanochat_prefix_cache_bytes {}\n", pc.bytes);
  for (const auto& g : gauges) {
    header(g.name.c_str(), "gauge", g.help.c_str());
    out += fmt::format("{} {}\n", g.name, python_float_str(g.value));
  }
  return out;
}

}  // namespace nanochat
