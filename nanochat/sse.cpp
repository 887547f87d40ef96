// sse: see sse.h.
#include "nanochat/sse.h"

#include <nlohmann/json.hpp>

namespace nanochat {

namespace {

enum class Scan { Complete, Truncated, Invalid };

// Looks at the UTF-8 sequence starting at s[i]. Sets len to its length (Complete), to the bytes present of a valid
// but unfinished sequence (Truncated: the input ends inside it), or to the maximal ill-formed subpart (Invalid).
Scan scan(std::string_view s, size_t i, size_t& len) {
  unsigned char b0 = s[i];
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 < 0x80) { len = 1; return Scan::Complete; }
  else if (b0 >= 0xC2 && b0 <= 0xDF) need = 2;
  else if (b0 == 0xE0) { need = 3; lo = 0xA0; }
  else if (b0 == 0xED) { need = 3; hi = 0x9F; }  // no surrogates
  else if (b0 >= 0xE1 && b0 <= 0xEF) need = 3;
  else if (b0 == 0xF0) { need = 4; lo = 0x90; }
  else if (b0 == 0xF4) { need = 4; hi = 0x8F; }  // nothing above U+10FFFF
  else if (b0 >= 0xF1 && b0 <= 0xF3) need = 4;
  else { len = 1; return Scan::Invalid; }
  for (int k = 1; k < need; k++) {
    if (i + k >= s.size()) { len = k; return Scan::Truncated; }
    unsigned char b = s[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) { len = k; return Scan::Invalid; }
  }
  len = need;
  return Scan::Complete;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends the valid text of s to out; returns how many bytes were consumed (all but a trailing unfinished
// character when hold_back is set).
size_t append_valid(std::string_view s, std::string& out, bool hold_back) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    Scan r = scan(s, i, len);
    if (r == Scan::Complete) out.append(s.substr(i, len));
    else if (r == Scan::Truncated && hold_back) return i;
    else out.append(kReplacement);
    i += len;
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

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  append_valid(bytes, out, /*hold_back=*/false);
  return out;
}

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

std::string sse_error_event(std::string_view message) {
  return sse_event("{\"error\": " + json_quote(message) + "}");
}

}  // namespace nanochat
