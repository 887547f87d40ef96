// stop_text: see stop_text.h.
#include "nanochat/serve/stop_text.h"

#include <algorithm>

namespace nanochat {

std::string StopFilter::push(std::string_view text) {
  if (stopped_) return {};
  held_ += text;
  // Sent text never ends in the start of a stop string, so a match can only begin inside held_.
  size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Keep the longest suffix that is a proper prefix of a stop string; send the rest.
  size_t keep = 0;
  for (const auto& s : stops_)
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k)
      if (std::string_view(held_).substr(held_.size() - k) == std::string_view(s).substr(0, k)) {
        keep = k;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

}  // namespace nanochat
