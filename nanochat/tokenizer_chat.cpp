// tokenizer_chat: chat rendering for the Tokenizer (nanochat/tokenizer.py render_conversation) — a conversation becomes
// token ids plus a mask of which tokens the assistant is trained on. Declared in tokenizer.h.
#include <fmt/format.h>

#include "nanochat/common.h"
#include "nanochat/tokenizer.h"

namespace nanochat {

using json = nlohmann::json;

namespace {

const json& field(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) fail("{} has no \"{}\" field", where, key);
  return obj.at(key);
}

const std::string& string_field(const json& obj, const char* key, const std::string& where) {
  const json& v = field(obj, key, where);
  if (!v.is_string()) fail("{}: \"{}\" must be a string, got {}", where, key, v.type_name());
  return v.get_ref<const std::string&>();
}

}  // namespace

std::pair<std::vector<int32_t>, std::vector<int32_t>> Tokenizer::render_conversation(const json& conversation,
                                                                                     int max_tokens) const {
  const json& all = field(conversation, "messages", "conversation");
  if (!all.is_array()) fail("conversation: \"messages\" must be a list, got {}", all.type_name());
  std::vector<json> messages(all.begin(), all.end());
  // A leading system message is folded into the first user message.
  if (!messages.empty() && string_field(messages[0], "role", "message 0") == "system") {
    if (messages.size() < 2 || string_field(messages[1], "role", "message 1") != "user")
      fail("conversation: a system message must be followed by a user message");
    json merged = messages[1];
    merged["content"] =
        string_field(messages[0], "content", "message 0") + "\n\n" + string_field(messages[1], "content", "message 1");
    messages.erase(messages.begin());
    messages[0] = std::move(merged);
  }
  if (messages.empty()) fail("conversation has no messages; it needs at least one user message");

  std::vector<int32_t> ids, mask;
  auto add = [&](const std::vector<int32_t>& tokens, int32_t m) {
    ids.insert(ids.end(), tokens.begin(), tokens.end());
    mask.insert(mask.end(), tokens.size(), m);
  };
  auto add1 = [&](int32_t token, int32_t m) {
    ids.push_back(token);
    mask.push_back(m);
  };
  const int32_t user_start = encode_special("<|user_start|>"), user_end = encode_special("<|user_end|>");
  const int32_t assistant_start = encode_special("<|assistant_start|>");
  const int32_t assistant_end = encode_special("<|assistant_end|>");
  const int32_t python_start = encode_special("<|python_start|>"), python_end = encode_special("<|python_end|>");
  const int32_t output_start = encode_special("<|output_start|>"), output_end = encode_special("<|output_end|>");

  add1(get_bos_token_id(), 0);
  for (size_t i = 0; i < messages.size(); i++) {
    const json& msg = messages[i];
    std::string where = fmt::format("message {}", i);
    const std::string& role = string_field(msg, "role", where);
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    if (role != expected)
      fail("message {} is from {} but should be from {} (roles must alternate user/assistant)", i, role, expected);
    const json& content = field(msg, "content", where);
    if (role == "user") {
      if (!content.is_string()) fail("message {}: user content must be a string, got {}", i, content.type_name());
      add1(user_start, 0);
      add(encode(content.get_ref<const std::string&>()), 0);
      add1(user_end, 0);
      continue;
    }
    add1(assistant_start, 0);
    if (content.is_string()) {
      add(encode(content.get_ref<const std::string&>()), 1);
    } else if (content.is_array()) {
      for (size_t k = 0; k < content.size(); k++) {
        std::string pwhere = fmt::format("message {} part {}", i, k);
        const json& part = content[k];
        std::vector<int32_t> value = encode(string_field(part, "text", pwhere));
        const std::string& type = string_field(part, "type", pwhere);
        if (type == "text") {
          add(value, 1);
        } else if (type == "python") {
          add1(python_start, 1);
          add(value, 1);
          add1(python_end, 1);
        } else if (type == "python_output") {
          add1(output_start, 0);
          add(value, 0);
          add1(output_end, 0);
        } else {
          fail("{}: unknown part type '{}' (expected text, python or python_output)", pwhere, type);
        }
      }
    } else {
      fail("message {}: assistant content must be a string or a list of parts, got {}", i, content.type_name());
    }
    add1(assistant_end, 1);
  }
  if (max_tokens >= 0 && ids.size() > size_t(max_tokens)) {
    ids.resize(size_t(max_tokens));
    mask.resize(size_t(max_tokens));
  }
  return {std::move(ids), std::move(mask)};
}

std::vector<int32_t> Tokenizer::render_for_completion(const json& conversation) const {
  const json& all = field(conversation, "messages", "conversation");
  if (!all.is_array() || all.empty()) fail("conversation: \"messages\" must be a non-empty list");
  if (string_field(all.back(), "role", "last message") != "assistant")
    fail("render_for_completion: the last message must be from the assistant (it is removed and completed)");
  json copy = conversation;
  copy["messages"].erase(copy["messages"].size() - 1);
  std::vector<int32_t> ids = render_conversation(copy).first;
  ids.push_back(encode_special("<|assistant_start|>"));
  return ids;
}

std::string Tokenizer::visualize_tokenization(const std::vector<int32_t>& ids, const std::vector<int32_t>& mask,
                                              bool with_token_id) const {
  const char* red = "\033[91m";
  const char* green = "\033[92m";
  const char* reset = "\033[0m";
  const char* gray = "\033[90m";
  std::string out;
  for (size_t i = 0; i < ids.size() && i < mask.size(); i++) {
    if (i) out += '|';
    out += fmt::format("{}{}{}", mask[i] == 1 ? green : red, decode({ids[i]}), reset);
    if (with_token_id) out += fmt::format("|{}({}){}", gray, ids[i], reset);
  }
  return out;
}

}  // namespace nanochat
