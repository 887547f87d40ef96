// tasks/spellingbee: synthetic spelling tasks, generated on the fly from a word list with Python's random.Random so
// every example is identical to Python nanochat's (tasks/spellingbee.py SpellingBee.get_example, SimpleSpelling).
//   SpellingBee: "How many r are in strawberry?" answered by spelling the word out, counting, checking with the
//     calculator tool ('strawberry'.count('r')) and a final "#### 3". Generative; evaluate/reward like GSM8K.
//   SimpleSpelling: "Spell the word: x" -> "x:l,e,t,t,e,r,s" over the word list shuffled with Random(42).
// Example i uses seed i (train) or 10,000,000 + i (test). The word list is <base_dir>/words_alpha.txt, downloaded
// from nanochat's URL when missing; offline it falls back to /usr/share/dict/words (lowercase a-z words only), with a
// log line saying so — examples then differ from Python's.
#pragma once

#include <string>
#include <vector>

#include "tasks/common.h"

namespace nanochat {

inline constexpr int64_t kTestRandomSeedOffset = 10000000;
inline constexpr const char* kWordListUrl =
    "https://raw.githubusercontent.com/dwyl/english-words/refs/heads/master/words_alpha.txt";

// The word list: lines of <base_dir>/words_alpha.txt, stripped (download, else the offline fallback above).
std::vector<std::string> load_word_list();
// Lines of a word-list file, stripped, in file order.
std::vector<std::string> read_word_file(const std::string& path);

class SpellingBee : public Task {
 public:
  SpellingBee(int64_t size = 1000, const std::string& split = "train", Slice slice = {});
  SpellingBee(std::vector<std::string> words, int64_t size, const std::string& split, Slice slice = {});

  std::string eval_type() const override { return "generative"; }
  int64_t num_examples() const override { return size_; }
  Conversation get_example(int64_t index) const override;
  int evaluate(const Conversation& conversation, const std::string& response) const override;

 private:
  std::vector<std::string> words_;
  int64_t size_;
  bool test_;
};

class SimpleSpelling : public Task {
 public:
  SimpleSpelling(int64_t size = 1000, const std::string& split = "train", Slice slice = {});
  SimpleSpelling(std::vector<std::string> words, int64_t size, const std::string& split, Slice slice = {});

  std::string eval_type() const override { return "generative"; }
  int64_t num_examples() const override { return size_; }
  Conversation get_example(int64_t index) const override;

 private:
  std::vector<std::string> words_;  // shuffled once with Random(42)
  int64_t size_;
  bool test_;
};

}  // namespace nanochat
