// stop_text: OpenAI's "stop" sequences on a reply that arrives a piece at a time. The reply ends before the first
// stop string it contains, and a stream must never send text that turns out to belong to one: text that could be
// the start of a stop string ("\n\nUs" while waiting for "\n\nUser:") is held back until the next pieces show
// whether it is (the reply ends there) or not (it goes out with them). Works on complete UTF-8 text (after
// sse.h's Utf8Holdback), so a stop string is matched whatever tokens its bytes came in.
// Not covered: which tokens a piece came from (the server keeps that, for logprobs and usage).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nanochat {

class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Adds reply text; returns the text now safe to send (possibly empty). Once a stop string has appeared, returns
  // the text before it, stopped() turns true, and nothing more may be pushed.
  std::string push(std::string_view text);
  // The held-back text, for a reply that ended without a stop string.
  std::string finish() { return std::exchange(held_, {}); }
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;  // a suffix of the reply that is the start of some stop string
  bool stopped_ = false;
};

}  // namespace nanochat
