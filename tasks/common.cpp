// tasks/common: see common.h.
#include "tasks/common.h"

#include "nanochat/common.h"
#include "nanochat/formats/pyrandom.h"

namespace nanochat {

Task::Task(Slice slice) : slice_(slice) {
  if (slice.start < 0) fail("task slice start must be non-negative, got {}", slice.start);
  if (slice.stop && *slice.stop < slice.start)
    fail("task slice stop ({}) must be >= start ({})", *slice.stop, slice.start);
  if (slice.step < 1) fail("task slice step must be strictly positive, got {}", slice.step);
}

int64_t Task::size() const {
  int64_t n = num_examples();
  if (slice_.stop && *slice_.stop > n) {
    if (!warned_)
      print0f("Warning: stop parameter ({}) exceeds dataset size ({}). Using {} examples instead.", *slice_.stop, n, n);
    warned_ = true;
    slice_.stop = n;
  }
  int64_t stop = slice_.stop.value_or(n);
  int64_t span = stop - slice_.start;
  int64_t num = (span + slice_.step - 1) / slice_.step;
  return std::max<int64_t>(num, 0);
}

Conversation Task::operator[](int64_t index) const {
  if (index < 0 || index >= size()) fail("task index {} out of range (size {})", index, size());
  return get_example(slice_.start + index * slice_.step);
}

int Task::evaluate(const Conversation&, const std::string&) const {
  fail("this task has no evaluation (only categorical and generative tasks can be evaluated)");
}

double Task::reward(const Conversation& conversation, const std::string& response) const {
  return double(evaluate(conversation, response));
}

TaskMixture::TaskMixture(std::vector<TaskPtr> tasks, Slice slice) : Task(slice), tasks_(std::move(tasks)) {
  for (size_t t = 0; t < tasks_.size(); t++) {
    int64_t n = tasks_[t]->size();
    for (int64_t i = 0; i < n; i++) index_map_.emplace_back(int32_t(t), i);
  }
  PyRandom rng(42);
  rng.shuffle(index_map_);
}

Conversation TaskMixture::get_example(int64_t index) const {
  if (index < 0 || index >= int64_t(index_map_.size()))
    fail("index {} out of range for a mixture of {} conversations", index, index_map_.size());
  auto [t, i] = index_map_[size_t(index)];
  return (*tasks_[size_t(t)])[i];
}

TaskSequence::TaskSequence(std::vector<TaskPtr> tasks, Slice slice) : Task(slice), tasks_(std::move(tasks)) {
  for (auto& t : tasks_) {
    lengths_.push_back(t->size());
    total_ += lengths_.back();
  }
}

Conversation TaskSequence::get_example(int64_t index) const {
  if (index < 0 || index >= total_) fail("index {} out of range for a sequence of {} conversations", index, total_);
  for (size_t t = 0; t < tasks_.size(); t++) {
    if (index < lengths_[t]) return (*tasks_[t])[index];
    index -= lengths_[t];
  }
  fail("index out of range");
}

std::string render_mc(const std::string& question, const std::vector<std::string>& letters,
                      const std::vector<std::string>& choices) {
  std::string q = "Multiple Choice question: " + question + "\n";
  for (size_t i = 0; i < letters.size() && i < choices.size(); i++) q += "- " + choices[i] + "=" + letters[i] + "\n";
  q += "\nRespond only with the letter of the correct answer.";
  return q;
}

ShuffledRows::ShuffledRows(const std::vector<nlohmann::json>& rows, uint32_t seed) {
  rows_.reserve(rows.size());
  for (auto& r : rows) rows_.push_back(r.dump());
  order_ = numpy_permutation(int64_t(rows_.size()), seed);
}

ShuffledRows::ShuffledRows(std::vector<std::string> row_json, uint32_t seed) : rows_(std::move(row_json)) {
  order_ = numpy_permutation(int64_t(rows_.size()), seed);
}

nlohmann::json ShuffledRows::operator[](int64_t index) const {
  if (index < 0 || index >= size()) fail("row index {} out of range ({} rows)", index, size());
  return nlohmann::json::parse(rows_[size_t(order_[size_t(index)])]);
}

std::string py_strip(const std::string& s) {
  auto ws = [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); };
  size_t a = 0, b = s.size();
  while (a < b && ws((unsigned char)s[a])) a++;
  while (b > a && ws((unsigned char)s[b - 1])) b--;
  return s.substr(a, b - a);
}

}  // namespace nanochat
