// openai_format: see openai_format.h.
#include "nanochat/serve/openai_format.h"

#include "nanochat/serve/sse.h"

namespace nanochat {

using json = nlohmann::json;

namespace {

json token_json(const TokenText& t) {
  json bytes = json::array();
  for (unsigned char c : t.bytes) bytes.push_back(int(c));
  return {{"token", sanitize_utf8(t.bytes)}, {"logprob", t.logprob}, {"bytes", bytes}};
}

const char* object_name(const ReplyMeta& m, bool chunk) {
  if (m.api == ChatApi::Completions) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json head(const ReplyMeta& m, bool chunk) {
  return {{"id", m.id}, {"object", object_name(m, chunk)}, {"created", m.created}, {"model", m.model}};
}

}  // namespace

json logprobs_json(ChatApi api, const std::vector<ReplyToken>& tokens) {
  if (api == ChatApi::Completions) {
    json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    for (const auto& t : tokens) {
      toks.push_back(sanitize_utf8(t.token.bytes));
      lps.push_back(t.token.logprob);
      json top = json::object();
      for (const auto& a : t.top) top[sanitize_utf8(a.bytes)] = a.logprob;
      tops.push_back(top);
      offsets.push_back(t.offset);
    }
    return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
  }
  json content = json::array();
  for (const auto& t : tokens) {
    json e = token_json(t.token), top = json::array();
    for (const auto& a : t.top) top.push_back(token_json(a));
    e["top_logprobs"] = top;
    content.push_back(e);
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json reply_json_body(const ReplyMeta& m, const std::vector<ReplyChoice>& choices, const json& usage) {
  json out = json::array();
  for (size_t i = 0; i < choices.size(); i++) {
    const auto& c = choices[i];
    json lp = m.logprobs ? logprobs_json(m.api, c.tokens) : json(nullptr);
    if (m.api == ChatApi::Completions)
      out.push_back({{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish_reason}});
    else
      out.push_back({{"index", i},
                     {"message", {{"role", "assistant"}, {"content", c.text}}},
                     {"logprobs", lp},
                     {"finish_reason", c.finish_reason}});
  }
  json body = head(m, false);
  body["choices"] = out;
  body["usage"] = usage;
  return body;
}

json reply_chunk(const ReplyMeta& m, int index, const std::string& text, const std::vector<ReplyToken>& tokens,
                 const json& finish_reason, bool role) {
  json choice = {{"index", index}};
  if (m.api == ChatApi::Completions)
    choice["text"] = text;
  else
    choice["delta"] = role                      ? json{{"role", "assistant"}, {"content", ""}}
                      : finish_reason.is_null() ? json{{"content", text}}
                                                : json::object();
  if (m.logprobs && !role)
    choice["logprobs"] = logprobs_json(m.api, tokens);
  else if (m.logprobs || m.api == ChatApi::Completions)
    choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason;
  json c = head(m, true);
  c["choices"] = json::array({choice});
  return c;
}

json usage_chunk(const ReplyMeta& m, const json& usage) {
  json c = head(m, true);
  c["choices"] = json::array();
  c["usage"] = usage;
  return c;
}

}  // namespace nanochat
