// tasks/spellingbee: see spellingbee.h. The RNG call order below is the contract: word, branch draw, letter,
// template, lowercase draw, two quote choices, question-mark draw.
#include "tasks/spellingbee.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <unordered_set>

#include "nanochat/common.h"
#include "nanochat/download.h"
#include "nanochat/formats/pyrandom.h"
#include "tasks/gsm8k.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kTemplates = {
    "How many {letter} are in the word {word}",
    "How many {letter} are in {word}",
    "Count the number of {letter} in {word}",
    "How many times does {letter} appear in {word}",
    "What's the count of {letter} in {word}",
    "In the word {word}, how many {letter} are there",
    "How many letter {letter} are in the word {word}",
    "Count how many {letter} appear in {word}",
    "Tell me the number of {letter} in {word}",
    "How many occurrences of {letter} are in {word}",
    "Find the count of {letter} in {word}",
    "Can you count the {letter} letters in {word}",
    "What is the frequency of {letter} in {word}",
    "How many {letter}s are in {word}",
    "How many {letter}'s are in {word}",
    "Count all the {letter} in {word}",
    "How many times is {letter} in {word}",
    "Number of {letter} in {word}",
    "Total count of {letter} in {word}",
    "How many {letter} does {word} have",
    "How many {letter} does {word} contain",
    "What's the number of {letter} in {word}",
    "{word} has how many {letter}",
    "In {word}, count the {letter}",
    "How many {letter} appear in {word}",
    "Count the {letter} in {word}",
    "Give me the count of {letter} in {word}",
    "How many instances of {letter} in {word}",
    "Show me how many {letter} are in {word}",
    "Calculate the number of {letter} in {word}",
    // Spanish
    "¿Cuántas {letter} hay en {word}?",
    "¿Cuántas veces aparece {letter} en {word}?",
    "Cuenta las {letter} en {word}",
    "¿Cuántas letras {letter} tiene {word}?",
    // Chinese
    "{word}中有多少个{letter}",
    "{word}里有几个{letter}",
    "数一下{word}中的{letter}",
    "{word}这个词里有多少{letter}",
    // Korean
    "{word}에 {letter}가 몇 개 있나요",
    "{word}에서 {letter}의 개수는",
    "{word}에 {letter}가 몇 번 나오나요",
    "{word}라는 단어에 {letter}가 몇 개",
    // French
    "Combien de {letter} dans {word}",
    "Combien de fois {letter} apparaît dans {word}",
    "Compte les {letter} dans {word}",
    // German
    "Wie viele {letter} sind in {word}",
    "Wie oft kommt {letter} in {word} vor",
    "Zähle die {letter} in {word}",
    // Japanese
    "{word}に{letter}は何個ありますか",
    "{word}の中に{letter}がいくつ",
    "{word}に{letter}が何回出てくる",
};

const std::vector<std::string> kLetters = [] {
  std::vector<std::string> v;
  for (char c = 'a'; c <= 'z'; c++) v.emplace_back(1, c);
  return v;
}();

const std::vector<std::string> kQuotes = {"", "'", "\""};

// A Python str is a sequence of code points: split UTF-8 the same way (invalid bytes stay single units).
std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = (unsigned char)s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); i++) out += (i ? sep : "") + parts[i];
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

// nanochat's download_file_with_lock for one file: lock, re-check, download (one attempt, as Python makes).
bool download_with_lock(const std::string& url, const fs::path& target, std::string& err) {
  int lock = open((target.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0) {
    err = "cannot create the lock file";
    return false;
  }
  flock(lock, LOCK_EX);
  bool ok = fs::exists(target);
  if (!ok) {
    print0f("Downloading {}...", url);
    try {
      download_file(url, target, 1, 30);
      print0f("Downloaded to {}", target.string());
      ok = true;
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  close(lock);
  return ok;
}

}  // namespace

static std::vector<std::string> load_word_list_uncached(const fs::path& target);

std::vector<std::string> read_word_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read the word list {}", path);
  std::vector<std::string> words;
  std::string line;
  while (std::getline(f, line)) words.push_back(py_strip(line));
  return words;
}

std::vector<std::string> load_word_list() {
  // SFT builds SpellingBee and SimpleSpelling, chat_eval another: read (or download) the list once per process.
  static std::mutex mu;
  static std::map<std::string, std::vector<std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  const fs::path target = get_base_dir() / "words_alpha.txt";
  auto hit = cache.find(target.string());
  if (hit != cache.end()) return hit->second;
  return cache[target.string()] = load_word_list_uncached(target);
}

static std::vector<std::string> load_word_list_uncached(const fs::path& target) {
  std::string err;
  if (fs::exists(target) || download_with_lock(kWordListUrl, target, err)) return read_word_file(target.string());
  const char* fallback = "/usr/share/dict/words";
  if (!fs::exists(fallback))
    fail("cannot download the word list ({}) and {} does not exist: put words_alpha.txt in {} or install wamerican",
         err, fallback, target.parent_path().string());
  print0f(
      "Word list: download of {} failed ({}); using {} (lowercase a-z words) instead, so spelling examples "
      "differ from Python nanochat's",
      kWordListUrl, err, fallback);
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  for (auto& w : read_word_file(fallback)) {
    bool alpha = !w.empty();
    std::string lower;
    for (char c : w) {
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
      if (c < 'a' || c > 'z') alpha = false;
      lower.push_back(c);
    }
    if (alpha && seen.insert(lower).second) words.push_back(lower);
  }
  return words;
}

static bool parse_split(const std::string& split, const char* task) {
  if (split != "train" && split != "test") fail("{} split must be train|test, got '{}'", task, split);
  return split == "test";
}

SpellingBee::SpellingBee(int64_t size, const std::string& split, Slice slice)
    : SpellingBee(load_word_list(), size, split, slice) {}

SpellingBee::SpellingBee(std::vector<std::string> words, int64_t size, const std::string& split, Slice slice)
    : Task(slice), words_(std::move(words)), size_(size), test_(parse_split(split, "SpellingBee")) {
  if (words_.empty()) fail("SpellingBee: the word list is empty");
}

Conversation SpellingBee::get_example(int64_t index) const {
  PyRandom rng(uint64_t(test_ ? kTestRandomSeedOffset + index : index));
  const std::string& word = rng.choice(words_);
  const std::vector<std::string> chars = code_points(word);
  if (chars.empty()) fail("SpellingBee: the word list contains an empty line");
  std::string letter = rng.random() < 0.9 ? rng.choice(chars) : rng.choice(kLetters);
  int64_t count = 0;
  for (auto& c : chars) count += c == letter;  // str.count of a single code point

  std::string tmpl = rng.choice(kTemplates);
  if (rng.random() < 0.3)  // the templates' only upper-case letters are ASCII
    for (char& c : tmpl)
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  const std::string& letter_quote = rng.choice(kQuotes);
  const std::string& word_quote = rng.choice(kQuotes);
  std::string user = replace_all(tmpl, "{letter}", letter_quote + letter + letter_quote);
  user = replace_all(user, "{word}", word_quote + word + word_quote);
  if (rng.random() < 0.5) user += "?";

  std::string manual = "We are asked to find the number '" + letter + "' in the word '" + word +
                       "'. Let me try a manual approach first.\n\nFirst spell the word out:\n" + word + ":" +
                       join(chars, ",") + "\n\nThen count the occurrences of '" + letter + "':\n";
  int64_t running = 0;
  for (size_t i = 0; i < chars.size(); i++) {
    if (chars[i] == letter)
      manual += fmt::format("{}:{} hit! count={}\n", i + 1, chars[i], ++running);
    else
      manual += fmt::format("{}:{}\n", i + 1, chars[i]);
  }
  manual += fmt::format("\nThis gives us {}.", running);
  nlohmann::json parts = nlohmann::json::array();
  parts.push_back({{"type", "text"}, {"text", manual}});
  parts.push_back({{"type", "text"}, {"text", "\n\nLet me double check this using Python:\n\n"}});
  parts.push_back({{"type", "python"}, {"text", "'" + word + "'.count('" + letter + "')"}});
  parts.push_back({{"type", "python_output"}, {"text", std::to_string(count)}});
  parts.push_back({{"type", "text"},
                   {"text", fmt::format("\n\nPython gives us {}.\n\nMy final answer is:\n\n#### {}", count, count)}});
  return {{"messages", {{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", parts}}}}};
}

int SpellingBee::evaluate(const Conversation& conversation, const std::string& response) const {
  return evaluate_hash_answer(conversation, response);
}

SimpleSpelling::SimpleSpelling(int64_t size, const std::string& split, Slice slice)
    : SimpleSpelling(load_word_list(), size, split, slice) {}

SimpleSpelling::SimpleSpelling(std::vector<std::string> words, int64_t size, const std::string& split, Slice slice)
    : Task(slice), words_(std::move(words)), size_(size), test_(parse_split(split, "SimpleSpelling")) {
  if (words_.empty()) fail("SimpleSpelling: the word list is empty");
  PyRandom rng(42);
  rng.shuffle(words_);  // a different word order than SpellingBee's
}

Conversation SimpleSpelling::get_example(int64_t index) const {
  PyRandom rng(uint64_t(test_ ? kTestRandomSeedOffset + index : index));
  const std::string& word = rng.choice(words_);
  return {{"messages",
           {{{"role", "user"}, {"content", "Spell the word: " + word}},
            {{"role", "assistant"}, {"content", word + ":" + join(code_points(word), ",")}}}}};
}

}  // namespace nanochat
