// sse: see sse.h.
#include "nanochat/serve/sse.h"

#include <nlohmann/json.hpp>

#include "nanochat/bpe/utf8.h"

namespace nanochat {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends the valid text of s to out; returns how many bytes were consumed (all but a trailing unfinished
// character when hold_back is set).
size_t append_valid(std::string_view s, std::string& out, bool hold_back) {
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0, len = utf8_sequence_length(s, i, &bad);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
      continue;
    }
    // An ill-formed subpart that runs to the end and starts with a lead byte is a character still arriving.
    unsigned char lead = s[i];
    if (hold_back && i + bad == s.size() && lead >= 0xC2 && lead <= 0xF4) return i;
    out.append(kReplacement);
    i += bad;
  }
  return i;
}

}  // namespace

std::string Utf8Holdback::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  size_t used = append_valid(pending_, out, /*hold_back=*/true);
  pending_.erase(0, used);
  return out;
}

std::string sanitize_utf8(std::string_view bytes) { return decode_utf8_replace(bytes); }

std::string json_quote(std::string_view text) {
  // nlohmann escapes exactly what json.dumps(ensure_ascii=False) escapes: " \ and control characters.
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(std::string_view payload) {
  std::string e;
  e.reserve(payload.size() + 8);
  e.append("data: ").append(payload).append("\n\n");
  return e;
}

std::string sse_token_event(std::string_view text, int gpu_id) {
  return sse_event("{\"token\": " + json_quote(text) + ", \"gpu\": " + std::to_string(gpu_id) + "}");
}

std::string sse_done_event() { return sse_event("{\"done\": true}"); }

std::string sse_error_event(std::string_view message) { return sse_event("{\"error\": " + json_quote(message) + "}"); }

}  // namespace nanochat
