// tasks/customjson: conversations from a JSONL file, one JSON array of messages per line (e.g. the identity
// conversations chat_sft mixes in). No eval type.
//   CustomJSON task(base_dir / "identity_conversations.jsonl");
// Blank lines are skipped; each conversation must have >= 2 messages alternating user/assistant (starting with
// user) with string contents. A missing file gives a warning with the download command and zero conversations.
#pragma once

#include <filesystem>

#include "tasks/common.h"

namespace nanochat {

class CustomJSON : public Task {
 public:
  explicit CustomJSON(const std::filesystem::path& filepath, Slice slice = {});

  int64_t num_examples() const override { return int64_t(conversations_.size()); }
  Conversation get_example(int64_t index) const override;

 private:
  std::vector<nlohmann::json> conversations_;
};

}  // namespace nanochat
