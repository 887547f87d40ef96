// pyjson: see pyjson.h. Python's json encoder (json/encoder.py with c_make_encoder) and float.__repr__
// (format_float_short in 'r' mode) reproduced for the value kinds nlohmann::json holds.
#include "nanochat/formats/pyjson.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "nanochat/common.h"

namespace nanochat {

std::string json_float_repr(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  return python_float_str(x);
}

namespace {

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\u{:04x}", c);
          else
            out += (char)c;
      }
      i++;
      continue;
    }
    // Decode one UTF-8 sequence (nlohmann only holds valid UTF-8) and escape it as Python's ensure_ascii does.
    int n = (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : 3;
    uint32_t cp = c & (0x3f >> n);
    for (int k = 1; k <= n && i + k < s.size(); k++) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
    i += n + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      out += fmt::format("\\u{:04x}", cp);
    }
  }
  out += '"';
}

void dump(const Json& j, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    if (indent >= 0) {
      out += '\n';
      out.append((size_t)indent * lvl, ' ');
    }
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (j.type()) {
    case Json::value_t::null:
      out += "null";
      break;
    case Json::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      break;
    case Json::value_t::number_integer:
      out += std::to_string(j.get<int64_t>());
      break;
    case Json::value_t::number_unsigned:
      out += std::to_string(j.get<uint64_t>());
      break;
    case Json::value_t::number_float:
      out += json_float_repr(j.get<double>());
      break;
    case Json::value_t::string:
      dump_string(j.get_ref<const std::string&>(), out);
      break;
    case Json::value_t::array: {
      if (j.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      bool first = true;
      for (auto& x : j) {
        if (!first) out += item_sep;
        first = false;
        newline(level + 1);
        dump(x, indent, level + 1, out);
      }
      newline(level);
      out += ']';
      break;
    }
    case Json::value_t::object: {
      if (j.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (auto& [k, v] : j.items()) {
        if (!first) out += item_sep;
        first = false;
        newline(level + 1);
        dump_string(k, out);
        out += ": ";
        dump(v, indent, level + 1, out);
      }
      newline(level);
      out += '}';
      break;
    }
    default:
      fail("json: cannot write a {} value", j.type_name());
  }
}

// Python's bare NaN / Infinity / -Infinity become marked strings for nlohmann's parser, then doubles again.
constexpr std::string_view kMark = "\x01nanochat-nonfinite:";         // the parsed string
constexpr std::string_view kMarkJson = "\\u0001nanochat-nonfinite:";  // how it is spelled in the JSON text

void restore_nonfinite(Json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.rfind(kMark, 0) == 0) {
      std::string t = s.substr(kMark.size());
      j = t == "NaN" ? NAN : t == "Infinity" ? INFINITY : -INFINITY;
    }
  } else if (j.is_structured()) {
    for (auto& x : j) restore_nonfinite(x);
  }
}

}  // namespace

std::string json_dumps_python(const Json& j, int indent) {
  std::string out;
  dump(j, indent, 0, out);
  return out;
}

Json json_loads_python(std::string_view text) {
  std::string t;
  t.reserve(text.size());
  bool in_str = false, any = false;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (in_str) {
      t += c;
      if (c == '\\' && i + 1 < text.size())
        t += text[++i];
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    for (std::string_view tok : {"NaN", "Infinity", "-Infinity"}) {
      if (text.substr(i, tok.size()) == tok) {
        t += '"';
        t += kMarkJson;
        t += tok;
        t += '"';
        i += tok.size() - 1;
        any = true;
        c = 0;
        break;
      }
    }
    if (c) t += c;
  }
  Json j;
  try {
    j = Json::parse(t);
  } catch (const Json::parse_error& e) {
    fail("invalid JSON: {}", e.what());
  }
  if (any) restore_nonfinite(j);
  return j;
}

}  // namespace nanochat
