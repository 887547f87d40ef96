// tok_encode: encode text with a tokenizer and print the ids as JSON (or decode ids back to text).
//   nanochat tok_encode --text "hello world"                 # {"ids":[...],"num_tokens":N,"num_bytes":B}
//   echo "hello" | nanochat tok_encode --prepend "<|bos|>"   # stdin when --text is not given
//   nanochat tok_encode --jsonl < docs.jsonl                 # one {"ids":[...]} line per {"text":...} line
//   nanochat tok_encode --decode --text "[15339, 1917]"      # {"text":"hello world"}
//   nanochat tok_encode --tiktoken cl100k_base.tiktoken --encoding cl100k_base --text "hi"
// The tokenizer is <base_dir>/tokenizer/tokenizer.pkl unless --tokenizer-dir or --tiktoken is given.
// Not covered: chat rendering (see render_conversation in nanochat/tokenizer.h).
#include <charconv>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/cli/flags.h"
#include "nanochat/tokenizer.h"

using namespace nanochat;
using json = nlohmann::json;

namespace {

std::optional<TokenRef> parse_ref(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789") == std::string::npos && s.size() < 10) return TokenRef(int32_t(std::stoi(s)));
  return TokenRef(s);
}

// The CLI's I/O at the encoder's pace: whole reads and writes, ids printed with to_chars. Building a JSON value
// per id array and dumping it, and reading through istream iterators, cost several times the encoding itself.
std::string read_all(FILE* f) {
  std::string s;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) s.append(buf, n);
  if (std::ferror(f)) fail("cannot read stdin: {}", std::strerror(errno));
  return s;
}

void write_all(FILE* f, std::string& s) {
  if (!s.empty() && std::fwrite(s.data(), 1, s.size(), f) != s.size())
    fail("cannot write the output: {}", std::strerror(errno));
  s.clear();
}

void append_ids(std::string& out, const std::vector<int32_t>& ids) {
  out += '[';
  char buf[16];
  for (size_t i = 0; i < ids.size(); i++) {
    if (i) out += ',';
    auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), ids[i]);
    out.append(buf, p);
  }
  out += ']';
}

}  // namespace

int tok_encode_main(int argc, char** argv) {
  std::string text, tokenizer_dir, tiktoken, encoding = "cl100k_base", prepend, append;
  bool text_given = false, jsonl = false, decode = false, allow_special = false;
  int threads = 8;
  Flags app{"Encode text to token ids (JSON output), or decode ids", "nanochat tok_encode"};
  auto* text_opt = app.add_option("--text", text, "text to encode (default: read stdin)");
  app.add_option("--tokenizer-dir", tokenizer_dir, "directory with tokenizer.pkl (default: <base_dir>/tokenizer)");
  app.add_option("--tiktoken", tiktoken, "use a .tiktoken rank file instead (with --encoding)");
  app.add_option("--encoding", encoding, "pattern and special tokens for --tiktoken: gpt2 or cl100k_base");
  app.add_option("--prepend", prepend, "special token (name or id) to put before the ids");
  app.add_option("--append", append, "special token (name or id) to put after the ids");
  app.add_flag("--allow-special", allow_special, "encode special-token names in the text as special tokens");
  app.add_flag("--jsonl", jsonl, "input is JSONL with a \"text\" field per line; output one JSON line per input line");
  app.add_option("--threads", threads, "threads for --jsonl batch encoding");
  app.add_flag("--decode", decode, "input is a JSON list of ids; print {\"text\": ...}");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  text_given = text_opt->count() > 0;
  if (!tiktoken.empty() && !tokenizer_dir.empty()) fail("give either --tokenizer-dir or --tiktoken, not both");

  Tokenizer tok = !tiktoken.empty()        ? Tokenizer::from_pretrained(encoding, tiktoken)
                  : !tokenizer_dir.empty() ? Tokenizer::from_directory(tokenizer_dir)
                                           : Tokenizer::from_directory(get_base_dir() / "tokenizer");
  if (!text_given) text = read_all(stdin);
  auto pre = parse_ref(prepend), app_ref = parse_ref(append);

  if (decode) {
    json ids;
    try {
      ids = json::parse(text);
    } catch (const std::exception& e) {
      fail("--decode expects a JSON list of token ids: {}", e.what());
    }
    if (!ids.is_array()) fail("--decode expects a JSON list of token ids");
    std::vector<int32_t> v;
    for (const auto& x : ids) {
      if (!x.is_number_integer()) fail("--decode: {} is not a token id", x.dump());
      v.push_back(x.get<int32_t>());
    }
    std::cout << json{{"text", tok.decode(v)}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (jsonl) {
    std::vector<std::string> texts;
    size_t n = 0;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const std::string_view line(text.data() + pos, end - pos);
      pos = end + 1;
      n++;
      if (line.empty()) continue;
      json row;
      try {
        row = json::parse(line);
      } catch (const std::exception& e) {
        fail("--jsonl line {}: not valid JSON ({})", n, e.what());
      }
      auto it = row.is_object() ? row.find("text") : row.end();
      if (it == row.end() || !it->is_string())
        fail("--jsonl line {}: expected an object with a string field \"text\"", n);
      texts.push_back(std::move(it->get_ref<std::string&>()));
    }
    std::string out;
    for (const auto& ids : tok.encode_batch(texts, pre, app_ref, threads)) {
      out += "{\"ids\":";
      append_ids(out, ids);
      out += "}\n";
      if (out.size() > (1 << 20)) write_all(stdout, out);
    }
    write_all(stdout, out);
    return 0;
  }
  std::vector<int32_t> ids;
  if (allow_special) {
    if (pre) ids.push_back(tok.resolve_token(*pre));
    auto body = tok.encode_with_specials(text);
    ids.insert(ids.end(), body.begin(), body.end());
    if (app_ref) ids.push_back(tok.resolve_token(*app_ref));
  } else {
    ids = tok.encode(text, pre, app_ref);
  }
  std::string out = "{\"ids\":";
  append_ids(out, ids);
  out += fmt::format(",\"num_bytes\":{},\"num_tokens\":{}}}\n", text.size(), ids.size());
  write_all(stdout, out);
  return 0;
}
