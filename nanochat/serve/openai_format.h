// openai_format: the JSON of OpenAI's replies, for chat_server.h — chat.completion / chat.completion.chunk
// (POST /v1/chat/completions) and text_completion (POST /v1/completions), with their choices and log-probabilities:
//   chat         choices[i].logprobs = {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}
//   completions  choices[i].logprobs = {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}
// A token's "token" is its text with any incomplete UTF-8 replaced by U+FFFD (a byte token may hold part of a
// character); "bytes" are its exact bytes. Not covered: SSE framing (sse.h) and generation (chat_server.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nanochat/serve/chat_request.h"

namespace nanochat {

struct TokenText {
  std::string bytes;  // what the token decodes to
  float logprob = 0;
};

// A returned token with its log-probabilities.
struct ReplyToken {
  TokenText token;
  std::vector<TokenText> top;  // the most likely tokens at its step, most likely first
  size_t offset = 0;           // where it starts in its choice's text, in code points
};

// One finished choice.
struct ReplyChoice {
  std::string text;
  std::vector<ReplyToken> tokens;  // with logprobs asked for: the tokens of text
  const char* finish_reason = "stop";
};

// What every reply and chunk of one request carries.
struct ReplyMeta {
  ChatApi api = ChatApi::OpenAI;  // OpenAI (chat) or Completions
  std::string id, model;
  int64_t created = 0;
  bool logprobs = false;
};

// logprobs of a choice, or of one chunk's tokens, in the api's format.
nlohmann::json logprobs_json(ChatApi api, const std::vector<ReplyToken>& tokens);
// The whole reply (stream: false).
nlohmann::json reply_json_body(const ReplyMeta& m, const std::vector<ReplyChoice>& choices,
                               const nlohmann::json& usage);
// One chunk of a streamed reply for choice `index`: text (chat: delta.content; role: the first chunk's delta
// {"role": "assistant", "content": ""}), its tokens' logprobs, finish_reason (null until the choice's last chunk).
nlohmann::json reply_chunk(const ReplyMeta& m, int index, const std::string& text,
                           const std::vector<ReplyToken>& tokens, const nlohmann::json& finish_reason,
                           bool role = false);
// The last chunk when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ReplyMeta& m, const nlohmann::json& usage);

}  // namespace nanochat
