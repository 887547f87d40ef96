// tasks/smoltalk: general chat conversations (HuggingFaceTB/smol-smoltalk, train ~460K / test ~24K). No eval type.
//   SmolTalk task(ShuffledRows(rows));   // rows: {messages: [{content, role}, ...], source}
// Each conversation is the row's messages as they are, after checking: an optional leading system message, then at
// least two messages alternating user/assistant with string contents. Rows: tasks/hf_data.h or the caller.
#pragma once

#include "tasks/common.h"

namespace nanochat {

class SmolTalk : public Task {
 public:
  // split train | test; loads HuggingFaceTB/smol-smoltalk (tasks/hf_data.h).
  explicit SmolTalk(const std::string& split, Slice slice = {});
  explicit SmolTalk(ShuffledRows rows, Slice slice = {}) : Task(slice), rows_(std::move(rows)) {}
  static Conversation conversation_from_row(const nlohmann::json& row);

  int64_t num_examples() const override { return rows_.size(); }
  Conversation get_example(int64_t index) const override { return conversation_from_row(rows_[index]); }

 private:
  ShuffledRows rows_;
};

// Checks messages alternate user/assistant from `first` on, with string contents (shared with CustomJSON).
void check_alternating_messages(const nlohmann::json& messages, size_t first, const char* what);

}  // namespace nanochat
