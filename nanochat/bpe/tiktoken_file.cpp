// tiktoken_file: see tiktoken_file.h.
#include "nanochat/bpe/tiktoken_file.h"

#include <charconv>

#include "nanochat/common.h"

namespace nanochat {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64_decode(std::string_view s, bool* ok) {
  *ok = false;
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  if (s.size() % 4 == 1) return {};
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = b64_value(c);
    if (v < 0) return {};
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  *ok = true;
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (rest == 2) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::vector<std::pair<std::string, int32_t>> parse_tiktoken_ranks(std::string_view text, const std::string& what) {
  std::vector<std::pair<std::string, int32_t>> ranks;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    line_no++;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    bool ok = false;
    std::string token;
    int32_t rank = -1;
    if (sp != std::string_view::npos) {
      token = base64_decode(line.substr(0, sp), &ok);
      std::string_view r = line.substr(sp + 1);
      auto [p, ec] = std::from_chars(r.data(), r.data() + r.size(), rank);
      ok = ok && ec == std::errc() && p == r.data() + r.size() && rank >= 0;
    }
    if (!ok)
      fail("{} line {}: expected '<base64 token> <rank>', got '{}'", what, line_no, std::string(line.substr(0, 80)));
    ranks.emplace_back(std::move(token), rank);
  }
  if (ranks.empty()) fail("{} holds no ranks; is it a .tiktoken file?", what);
  return ranks;
}

std::vector<std::pair<std::string, int32_t>> read_tiktoken_file(const std::filesystem::path& path) {
  return parse_tiktoken_ranks(read_file(path), path.string());
}

std::string format_tiktoken_ranks(const std::vector<std::pair<std::string, int32_t>>& ranks) {
  std::string out;
  for (const auto& [bytes, rank] : ranks) {
    out += base64_encode(bytes);
    out += ' ';
    out += std::to_string(rank);
    out += '\n';
  }
  return out;
}

}  // namespace nanochat
