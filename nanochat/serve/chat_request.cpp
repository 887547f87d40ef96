// chat_request: see chat_request.h.
#include "nanochat/serve/chat_request.h"

#include <cmath>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "nanochat/bpe/utf8.h"

namespace nanochat {

using json = nlohmann::json;

void bad_request(const std::string& message) { throw HttpError(400, "invalid_request_error", message); }

namespace {

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// An optional number field: absent or null -> nullopt. Booleans are not numbers here (pydantic would coerce).
std::optional<double> get_float(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad_request(fmt::format("'{}' must be a number, got {}", key, type_name(*it)));
  return it->get<double>();
}

// An optional integer field; 3.0 is accepted as 3 (as pydantic does), 3.5 is not.
std::optional<int64_t> get_int(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
      bad_request(fmt::format("'{}' is out of range", key));
    return it->get<int64_t>();
  }
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return int64_t(d);
  }
  bad_request(fmt::format("'{}' must be an integer, got {}", key, it->is_number() ? "a fraction" : type_name(*it)));
}

// OpenAI content: a string, or a list of {"type": "text", "text": "..."} parts joined together.
std::string get_content(const json& m, size_t i, ChatApi api) {
  auto it = m.find("content");
  if (it == m.end()) bad_request(fmt::format("Message {} has no 'content'", i));
  if (it->is_string()) return it->get<std::string>();
  if (api == ChatApi::OpenAI && it->is_array()) {
    std::string text;
    for (const auto& part : *it) {
      auto type = part.is_object() ? part.find("type") : part.end();
      auto t = part.is_object() ? part.find("text") : part.end();
      if (type == part.end() || *type != "text" || t == part.end() || !t->is_string())
        bad_request(
            fmt::format("Message {} has a content part that is not {{\"type\": \"text\", \"text\": \"...\"}} "
                        "(only text is supported)",
                        i));
      text += t->get<std::string>();
    }
    return text;
  }
  bad_request(fmt::format("Message {} 'content' must be a string, got {}", i, type_name(*it)));
}

// OpenAI options the server does not act on. A client that sends one expects its effect, so it gets a 400 naming the
// option instead of a reply that silently lacks it — unless the value is the option's default, which changes nothing.
struct UnsupportedOption {
  const char* key;
  bool (*neutral)(const json& v);
  const char* why;
};

bool is_false(const json& v) { return v.is_boolean() && !v.get<bool>(); }
bool is_zero(const json& v) { return v.is_number() && v.get<double>() == 0.0; }
bool is_one(const json& v) { return v.is_number() && v.get<double>() == 1.0; }
bool is_empty(const json& v) { return (v.is_array() || v.is_object()) && v.empty(); }
bool is_none(const json& v) { return v == "none"; }
bool is_text_format(const json& v) { return v.is_object() && v.size() == 1 && v.value("type", "") == "text"; }
bool is_text_only(const json& v) { return v == json::array({"text"}); }
bool never(const json&) { return false; }

constexpr UnsupportedOption kUnsupportedOptions[] = {
    {"tools", is_empty, "the model has no tool calling"},
    {"tool_choice", is_none, "the model has no tool calling"},
    {"functions", is_empty, "the model has no function calling"},
    {"function_call", is_none, "the model has no function calling"},
    {"response_format", is_text_format, "the server cannot force JSON output; only {\"type\": \"text\"} is accepted"},
    {"presence_penalty", is_zero, "sampling has no repetition penalties; only 0 is accepted"},
    {"frequency_penalty", is_zero, "sampling has no repetition penalties; only 0 is accepted"},
    {"logit_bias", is_empty, "sampling takes no logit bias"},
    {"top_p", is_one, "sampling has no nucleus (top_p) cut; use top_k, or top_p 1"},
    {"modalities", is_text_only, "the model reads and writes text only"},
    {"audio", never, "the model reads and writes text only"},
    {"prediction", never, "predicted outputs are not supported"},
    {"reasoning_effort", never, "the model has no reasoning effort setting"},
    {"web_search_options", never, "the server has no web search"},
};

// nanochat's bounds on the sampling options, in nanochat's order; sets req's top_k and max_tokens.
void check_sampling(ChatRequest& req, std::optional<int64_t> top_k, std::optional<int64_t> max_tokens) {
  if (req.temperature && !(*req.temperature >= kMinTemperature && *req.temperature <= kMaxTemperature))
    bad_request("Temperature must be between 0.0 and 2.0");
  if (top_k && !(*top_k >= kMinTopK && *top_k <= kMaxTopK))
    bad_request(fmt::format("top_k must be between {} and {}", kMinTopK, kMaxTopK));
  if (max_tokens && !(*max_tokens >= kMinMaxTokens && *max_tokens <= kMaxMaxTokens))
    bad_request(fmt::format("max_tokens must be between {} and {}", kMinMaxTokens, kMaxMaxTokens));
  if (top_k) req.top_k = int(*top_k);
  if (max_tokens) req.max_tokens = int(*max_tokens);
}

void refuse_unsupported_options(const json& body) {
  for (const auto& o : kUnsupportedOptions) {
    auto it = body.find(o.key);
    if (it != body.end() && !it->is_null() && !o.neutral(*it))
      bad_request(fmt::format("'{}' is not supported; {}", o.key, o.why));
  }
}

// Completions only: echo and suffix change the text returned, best_of samples more than it returns.
constexpr UnsupportedOption kUnsupportedCompletionOptions[] = {
    {"echo", is_false, "the prompt is not echoed back; only false is accepted"},
    {"suffix", [](const json& v) { return v == ""; }, "the model does not fill in text before a suffix"},
};

void refuse_unsupported_options(const json& body, ChatApi api) {
  refuse_unsupported_options(body);
  if (api == ChatApi::Completions)
    for (const auto& o : kUnsupportedCompletionOptions) {
      auto it = body.find(o.key);
      if (it != body.end() && !it->is_null() && !o.neutral(*it))
        bad_request(fmt::format("'{}' is not supported; {}", o.key, o.why));
    }
}

// "stop": a string or a list of up to kMaxStopSequences non-empty strings (null or [] = none).
std::vector<std::string> get_stop(const json& body) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  std::vector<std::string> stop;
  if (it->is_string()) {
    stop.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > size_t(kMaxStopSequences))
      bad_request(fmt::format("'stop' may hold at most {} strings, got {}", kMaxStopSequences, it->size()));
    for (const auto& s : *it) {
      if (!s.is_string()) bad_request(fmt::format("'stop' must hold strings, got {}", type_name(s)));
      stop.push_back(s.get<std::string>());
    }
  } else {
    bad_request(fmt::format("'stop' must be a string or a list of strings, got {}", type_name(*it)));
  }
  for (const auto& s : stop)
    if (s.empty()) bad_request("'stop' strings must not be empty");
  return stop;
}

// The OpenAI options both OpenAI endpoints share, and their log-probability options (which differ).
void parse_openai_options(const json& j, ChatApi api, ChatRequest& req, std::optional<int64_t>& max_tokens) {
  if (auto mct = get_int(j, "max_completion_tokens"); mct && api == ChatApi::OpenAI) {
    if (max_tokens && *max_tokens != *mct)
      bad_request(fmt::format("'max_tokens' ({}) and 'max_completion_tokens' ({}) disagree; give one of them",
                              *max_tokens, *mct));
    max_tokens = mct;
  }
  if (auto s = j.find("stream"); s != j.end() && !s->is_null()) {
    if (!s->is_boolean()) bad_request(fmt::format("'stream' must be a boolean, got {}", type_name(*s)));
    req.stream = s->get<bool>();
  }
  if (auto so = j.find("stream_options"); so != j.end() && so->is_object()) {
    auto iu = so->find("include_usage");
    req.include_usage = iu != so->end() && iu->is_boolean() && iu->get<bool>();
  }
  if (auto seed = get_int(j, "seed")) req.seed = uint64_t(*seed);
  if (auto n = get_int(j, "n")) {
    if (*n < 1 || *n > kMaxChoices) bad_request(fmt::format("'n' must be between 1 and {}", kMaxChoices));
    req.n = int(*n);
  }
  if (auto b = get_int(j, "best_of"); b && api == ChatApi::Completions && *b != req.n)
    bad_request("'best_of' is not supported; every sample is returned (leave it out, or give best_of = n)");
  req.stop = get_stop(j);
  if (api == ChatApi::OpenAI) {
    bool logprobs = false;
    if (auto lp = j.find("logprobs"); lp != j.end() && !lp->is_null()) {
      if (!lp->is_boolean()) bad_request(fmt::format("'logprobs' must be a boolean, got {}", type_name(*lp)));
      logprobs = lp->get<bool>();
    }
    auto top = get_int(j, "top_logprobs");
    if (top && (*top < 0 || *top > kMaxTopLogprobs))
      bad_request(fmt::format("'top_logprobs' must be between 0 and {}", kMaxTopLogprobs));
    if (top && *top > 0 && !logprobs) bad_request("'top_logprobs' needs 'logprobs': true");
    if (logprobs) req.top_logprobs = int(top.value_or(0));
  } else {  // the legacy API: logprobs is how many alternatives to return (0 = the chosen token's only)
    auto lp = get_int(j, "logprobs");
    if (lp && (*lp < 0 || *lp > kMaxLegacyLogprobs))
      bad_request(fmt::format("'logprobs' must be between 0 and {}", kMaxLegacyLogprobs));
    if (lp) req.top_logprobs = int(*lp);
  }
  refuse_unsupported_options(j, api);
}

// Completions' "prompt": a string, or a list of exactly one string.
std::string get_prompt(const json& j) {
  auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) bad_request("'prompt' is required: a string");
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) return (*it)[0].get<std::string>();
  if (it->is_array())
    bad_request(
        "'prompt' as a list must hold exactly one string (batches of prompts and token-id prompts are not "
        "supported)");
  if (!it->is_string()) bad_request(fmt::format("'prompt' must be a string, got {}", type_name(*it)));
  return it->get<std::string>();
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body, std::string_view content_type, ChatApi api) {
  // 1. The body must be a JSON object. (nlohmann rejects invalid UTF-8, NaN/Infinity literals and lone surrogates.)
  auto semi = content_type.find(';');
  std::string mime(content_type.substr(0, semi));
  while (!mime.empty() && mime.back() == ' ') mime.pop_back();
  for (auto& c : mime) c = char(std::tolower((unsigned char)c));
  if (mime != "application/json")
    bad_request(fmt::format("Content-Type must be application/json, got '{}'", std::string(content_type)));
  if (body.empty()) bad_request("the request body is empty; send a JSON object with a 'messages' list");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    bad_request(fmt::format("the request body is not valid JSON (or not valid UTF-8): {}", e.what()));
  } catch (const json::exception& e) {  // e.g. 1e309: a number too large for a double
    bad_request(fmt::format("the request body has a value out of range: {}", e.what()));
  }
  if (!j.is_object()) bad_request(fmt::format("the request body must be a JSON object, got {}", type_name(j)));

  ChatRequest req;
  if (api == ChatApi::Completions) {
    req.prompt = get_prompt(j);
    req.temperature = get_float(j, "temperature");
    auto top_k = get_int(j, "top_k");
    auto max_tokens = get_int(j, "max_tokens");
    parse_openai_options(j, api, req, max_tokens);
    if (utf8_length(req.prompt) > size_t(kMaxTotalConversationLength))
      bad_request(fmt::format("'prompt' is too long. Maximum {} characters allowed", kMaxTotalConversationLength));
    check_sampling(req, top_k, max_tokens);
    return req;
  }

  // 2. Types (pydantic's schema check in nanochat).
  auto mit = j.find("messages");
  if (mit == j.end()) bad_request("'messages' is required: a list of {\"role\", \"content\"} objects");
  if (!mit->is_array()) bad_request(fmt::format("'messages' must be a list, got {}", type_name(*mit)));
  std::vector<ChatMessage> raw;
  raw.reserve(std::min<size_t>(mit->size(), kMaxMessagesPerRequest + 1));
  for (size_t i = 0; i < mit->size(); i++) {
    const json& m = (*mit)[i];
    if (!m.is_object()) bad_request(fmt::format("Message {} must be an object, got {}", i, type_name(m)));
    auto role = m.find("role");
    if (role == m.end()) bad_request(fmt::format("Message {} has no 'role'", i));
    if (!role->is_string()) bad_request(fmt::format("Message {} 'role' must be a string, got {}", i, type_name(*role)));
    raw.push_back({role->get<std::string>(), get_content(m, i, api)});
  }
  req.temperature = get_float(j, "temperature");
  auto top_k = get_int(j, "top_k");
  auto max_tokens = get_int(j, "max_tokens");
  if (api == ChatApi::OpenAI) parse_openai_options(j, api, req, max_tokens);

  // 3. nanochat's abuse limits, in nanochat's order.
  if (raw.empty()) bad_request("At least one message is required");
  if (raw.size() > size_t(kMaxMessagesPerRequest))
    bad_request(fmt::format("Too many messages. Maximum {} messages allowed per request", kMaxMessagesPerRequest));
  size_t total = 0;
  for (size_t i = 0; i < raw.size(); i++) {
    if (raw[i].content.empty()) bad_request(fmt::format("Message {} has empty content", i));
    size_t n = utf8_length(raw[i].content);  // code points, as Python's len()
    if (n > size_t(kMaxMessageLength))
      bad_request(
          fmt::format("Message {} is too long. Maximum {} characters allowed per message", i, kMaxMessageLength));
    total += n;
  }
  if (total > size_t(kMaxTotalConversationLength))
    bad_request(
        fmt::format("Total conversation is too long. Maximum {} characters allowed", kMaxTotalConversationLength));
  for (size_t i = 0; i < raw.size(); i++) {
    const auto& role = raw[i].role;
    bool ok = role == "user" || role == "assistant" || (api == ChatApi::OpenAI && role == "system" && i == 0);
    if (!ok) {
      if (api == ChatApi::OpenAI)
        bad_request(
            fmt::format("Message {} has invalid role '{}'. Must be 'user' or 'assistant' ('system' only as "
                        "the first message)",
                        i, role));
      bad_request(fmt::format("Message {} has invalid role. Must be 'user', 'assistant', or 'system'", i));
    }
  }
  check_sampling(req, top_k, max_tokens);

  // 4. A leading system message is folded into the first user message (nanochat/tokenizer.py render_conversation).
  if (!raw.empty() && raw[0].role == "system") {
    if (raw.size() < 2 || raw[1].role != "user") bad_request("a 'system' message must be followed by a 'user' message");
    raw[1].content = raw[0].content + "\n\n" + raw[1].content;
    raw.erase(raw.begin());
  }
  req.messages = std::move(raw);
  return req;
}

std::vector<int> build_completion_prompt(const ChatModel& model, const std::string& prompt) {
  std::vector<int> ids{model.special_id("<|bos|>")};
  auto enc = model.encode(prompt);  // ordinary text, as in a chat message
  ids.insert(ids.end(), enc.begin(), enc.end());
  return ids;
}

std::vector<int> build_prompt(const ChatModel& model, const std::vector<ChatMessage>& messages) {
  const int bos = model.special_id("<|bos|>");
  const int user_start = model.special_id("<|user_start|>"), user_end = model.special_id("<|user_end|>");
  const int assistant_start = model.special_id("<|assistant_start|>");
  const int assistant_end = model.special_id("<|assistant_end|>");
  std::vector<int> ids{bos};
  for (const auto& m : messages) {
    bool user = m.role == "user";
    ids.push_back(user ? user_start : assistant_start);
    auto enc = model.encode(m.content);  // ordinary text: "<|bos|>" typed by a user stays plain text
    ids.insert(ids.end(), enc.begin(), enc.end());
    ids.push_back(user ? user_end : assistant_end);
  }
  ids.push_back(assistant_start);
  return ids;
}

void check_token_budget(size_t prompt_tokens, int max_tokens, int sequence_len) {
  if (prompt_tokens + size_t(max_tokens) > size_t(sequence_len))
    bad_request(
        fmt::format("the conversation is too long for this model: {} prompt tokens + max_tokens {} > the "
                    "model's context of {} tokens; start a new conversation or lower max_tokens",
                    prompt_tokens, max_tokens, sequence_len));
}

}  // namespace nanochat
