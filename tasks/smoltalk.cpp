// tasks/smoltalk: see smoltalk.h.
#include "tasks/smoltalk.h"

#include "nanochat/common.h"
#include "tasks/hf_data.h"

namespace nanochat {

void check_alternating_messages(const nlohmann::json& messages, size_t first, const char* what) {
  for (size_t i = first; i < messages.size(); i++) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content"))
      fail("{}: message {} needs 'role' and 'content' fields", what, i - first);
    const char* expected = (i - first) % 2 == 0 ? "user" : "assistant";
    if (m["role"] != expected)
      fail("{}: message {} has role {} but should be {}", what, i - first, m["role"].dump(), expected);
    if (!m["content"].is_string()) fail("{}: message {} content must be a string", what, i - first);
  }
}

SmolTalk::SmolTalk(const std::string& split, Slice slice) : Task(slice) {
  if (split != "train" && split != "test") fail("SmolTalk split must be train|test, got '{}'", split);
  rows_ = load_hf_split("HuggingFaceTB/smol-smoltalk", "default", split);
}

Conversation SmolTalk::conversation_from_row(const nlohmann::json& row) {
  const auto& messages = row.at("messages");
  if (!messages.is_array() || messages.empty()) fail("SmolTalk: a row needs at least one message");
  size_t first = messages[0].value("role", "") == "system" ? 1 : 0;
  if (messages.size() - first < 2) fail("SmolTalk messages must have at least 2 messages");
  check_alternating_messages(messages, first, "SmolTalk");
  return {{"messages", messages}};
}

}  // namespace nanochat
