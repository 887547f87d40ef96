// chat_request: parsing and validating a request body for the web server (chat_server.h), and turning its
// messages (or prompt) into prompt token ids (scripts/chat_web.py's endpoints). Three request shapes:
//   - nanochat's  POST /chat/completions     {"messages": [{"role", "content"}...], "temperature", "top_k",
//                 "max_tokens"}
//   - OpenAI's    POST /v1/chat/completions  the same plus "model", "stream", "stream_options", "seed", "n" (1..8),
//                 "stop" (a string or up to 4), "max_completion_tokens" (= max_tokens; both, disagreeing: 400),
//                 "logprobs" (bool), "top_logprobs" (0..20, needs logprobs); content may be a list of
//                 {"type": "text", "text"} parts; a leading "system" message is merged into the first user message
//                 (nanochat/tokenizer.py render_conversation).
//   - OpenAI's legacy POST /v1/completions  {"prompt": "text" or ["text"], "max_tokens", "temperature", "top_k",
//                 "seed", "n", "stop", "stream", "stream_options", "logprobs" (0..5: how many alternatives)};
//                 "echo" only false, "suffix" only "", "best_of" only n.
// OpenAI options the server does not act on (tools, response_format, presence_penalty, logit_bias, top_p, ...) are
// refused by name unless they hold their default.
// Every bad input becomes an HttpError (status 400, a one-line message saying what is wrong) — never a crash.
// Limits are nanochat's abuse limits; lengths count Unicode code points, as Python's len() does.
// Not covered here: authentication, body size (413) and queueing, which the server handles.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nanochat/serve/chat_model.h"

namespace nanochat {

inline constexpr int kMaxMessagesPerRequest = 500;
inline constexpr int kMaxMessageLength = 8000;             // code points per message
inline constexpr int kMaxTotalConversationLength = 32000;  // code points over all messages
inline constexpr double kMinTemperature = 0.0, kMaxTemperature = 2.0;
inline constexpr int kMinTopK = 0, kMaxTopK = 200;  // 0 disables top-k filtering
inline constexpr int kMinMaxTokens = 1, kMaxMaxTokens = 4096;
inline constexpr int kMaxChoices = 8;         // n
inline constexpr int kMaxStopSequences = 4;   // stop
inline constexpr int kMaxTopLogprobs = 20;    // top_logprobs (chat)
inline constexpr int kMaxLegacyLogprobs = 5;  // logprobs (completions)

// An HTTP error with its status and an OpenAI-style error type ("invalid_request_error", "unavailable_error", ...).
struct HttpError : std::runtime_error {
  int status;
  std::string type;
  HttpError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status(status), type(std::move(type)) {}
};
// 400 invalid_request_error with a formatted message.
[[noreturn]] void bad_request(const std::string& message);

enum class ChatApi { Nanochat, OpenAI, Completions };

struct ChatMessage {
  std::string role;  // "user" or "assistant" after parsing
  std::string content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;  // chat APIs
  std::string prompt;                 // Completions
  std::optional<double> temperature;
  std::optional<int> top_k;
  std::optional<int> max_tokens;
  // OpenAI only
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::optional<uint64_t> seed;
  int n = 1;                      // choices, each its own sample (choice i seeded with seed + i)
  std::vector<std::string> stop;  // the reply ends before the first of these it contains
  int top_logprobs = -1;          // -1: no log-probabilities; else how many alternatives per token
};

// Parses and validates a request body. content_type is the request's Content-Type header (must be JSON).
// Validation order follows nanochat: types, message count, per-message and total length, roles, temperature,
// top_k, max_tokens. Throws HttpError(400) naming the problem.
ChatRequest parse_chat_request(std::string_view body, std::string_view content_type, ChatApi api);

// Prompt ids for a validated conversation: BOS; user -> USER_START, encode(content), USER_END; assistant ->
// ASSISTANT_START, encode(content), ASSISTANT_END; then ASSISTANT_START to prime the reply.
std::vector<int> build_prompt(const ChatModel& model, const std::vector<ChatMessage>& messages);

// Prompt ids for a plain completion (no chat template): BOS, encode(prompt).
std::vector<int> build_completion_prompt(const ChatModel& model, const std::string& prompt);

// Throws HttpError(400) when prompt_tokens + max_tokens does not fit in the model's context.
void check_token_budget(size_t prompt_tokens, int max_tokens, int sequence_len);

}  // namespace nanochat
