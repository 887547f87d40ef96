// tasks/customjson: see customjson.h.
#include "tasks/customjson.h"

#include <fstream>

#include "nanochat/common.h"
#include "tasks/smoltalk.h"

namespace nanochat {

CustomJSON::CustomJSON(const std::filesystem::path& filepath, Slice slice) : Task(slice) {
  if (!std::filesystem::exists(filepath)) {
    print0(std::string(80, '-'));
    print0f("Warning: File {} does not exist", filepath.string());
    print0("Download the identity conversations with:");
    print0f("curl -L -o {} https://karpathy-public.s3.us-west-2.amazonaws.com/identity_conversations.jsonl",
            filepath.string());
    print0(std::string(80, '-'));
    return;
  }
  std::ifstream f(filepath);
  if (!f) fail("cannot read {}", filepath.string());
  std::string line;
  for (size_t lineno = 1; std::getline(f, line); lineno++) {
    line = py_strip(line);
    if (line.empty()) continue;
    nlohmann::json messages;
    try {
      messages = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{}:{}: not valid JSON ({})", filepath.string(), lineno, e.what());
    }
    std::string where = fmt::format("{}:{}", filepath.string(), lineno);
    if (!messages.is_array()) fail("{}: expected a JSON array of messages", where);
    if (messages.size() < 2) fail("{}: a conversation must have at least 2 messages, got {}", where, messages.size());
    check_alternating_messages(messages, 0, where.c_str());
    conversations_.push_back(std::move(messages));
  }
}

Conversation CustomJSON::get_example(int64_t index) const {
  if (index < 0 || index >= num_examples()) fail("CustomJSON index {} out of range", index);
  return {{"messages", conversations_[size_t(index)]}};
}

}  // namespace nanochat
