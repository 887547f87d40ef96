// http_policy: see http_policy.h.
#include "nanochat/serve/http_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

namespace nanochat {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower((unsigned char)c));
  return out;
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    return inet_pton(AF_INET6, name.substr(1, name.size() - 2).c_str(), buf) == 1;
  return inet_pton(AF_INET, name.c_str(), buf) == 1;
}

// Splits "name[:port]" ("[v6]:port" for IPv6); port -1 when there is none, -2 when it is not a number.
void split_host_port(std::string_view hp, std::string& name, int& port) {
  size_t colon = hp.rfind(':');
  if (colon == std::string_view::npos || (!hp.empty() && hp.front() == '[' && hp.find(']') > colon)) {
    name = lower(hp);
    port = -1;
    return;
  }
  name = lower(hp.substr(0, colon));
  std::string_view digits = hp.substr(colon + 1);
  port = digits.empty() || digits.size() > 5 ? -2 : 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return void(port = -2);
    if (port >= 0) port = port * 10 + (c - '0');
  }
}

}  // namespace

bool host_allowed(std::string_view host_header, int port, const std::vector<std::string>& names) {
  std::string name;
  int p;
  split_host_port(host_header, name, p);
  if (p == -1) p = 80;
  if (p != port || name.empty()) return false;
  if (name.size() > 1 && name.back() == '.') name.pop_back();  // "localhost." is the same name
  return name == "localhost" || is_ip_literal(name) || std::find(names.begin(), names.end(), name) != names.end();
}

CorsDecision cors_decision(std::string_view origin, std::string_view host_header,
                           const std::vector<std::string>& allowed) {
  CorsDecision d;
  if (origin.empty()) return d;
  const std::string o = lower(origin), host = lower(host_header);
  if (o == "http://" + host || o == "https://" + host) return d;
  if (std::find(allowed.begin(), allowed.end(), o) != allowed.end()) {
    d.allow_origin = std::string(origin);
    d.credentials = true;
    return d;
  }
  if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) {
    d.allow_origin = "*";
    return d;
  }
  d.allowed = false;
  return d;
}

std::string normalize_cors_origin(std::string_view origin) {
  if (origin == "*") return "*";
  std::string o = lower(origin);
  if (!o.empty() && o.back() == '/') o.pop_back();
  size_t sep = o.find("://");
  if (sep == std::string::npos || sep == 0 || sep + 3 == o.size()) return "";
  for (size_t i = 0; i < sep; i++)
    if (!std::isalnum((unsigned char)o[i]) && o[i] != '+' && o[i] != '-' && o[i] != '.') return "";
  for (size_t i = sep + 3; i < o.size(); i++)  // host[:port]: no path, query, user info or spaces
    if (o[i] == '/' || o[i] == '?' || o[i] == '#' || o[i] == '@' || (unsigned char)o[i] <= ' ') return "";
  return o;
}

std::string escape_control_chars(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    const unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xC2 && i + 1 < s.size() && (unsigned char)s[i + 1] >= 0x80 &&
               (unsigned char)s[i + 1] <= 0x9F) {  // U+0080..U+009F (C1: NEL, CSI, ...)
      out += fmt::format("\\u{:04x}", (unsigned char)s[++i]);
    } else if (c == 0xE2 && i + 2 < s.size() && (unsigned char)s[i + 1] == 0x80 &&
               ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {  // line/paragraph separator
      out += (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += char(c);
    }
  }
  return out;
}

}  // namespace nanochat
