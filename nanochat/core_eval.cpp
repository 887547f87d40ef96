// core_eval: see core_eval.h.
#include "nanochat/core_eval.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "nanochat/common.h"
#include "nanochat/download.h"
#include "nanochat/formats/pyrandom.h"

extern char** environ;

namespace nanochat {

namespace fs = std::filesystem;
using json = nlohmann::json;

static const char* kEvalBundleUrl = "https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip";

// ---------------------------------------------------------------------------------------------------------------
// Bundle

namespace {

int run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// An exclusive lock on <path>, so only one process (rank) downloads; released when it goes out of scope.
struct FileLock {
  int fd;
  explicit FileLock(const fs::path& path) : fd(::open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd < 0) fail("cannot open lock file {}: {}", path.string(), std::strerror(errno));
    ::flock(fd, LOCK_EX);
  }
  ~FileLock() {
    ::flock(fd, LOCK_UN);
    ::close(fd);
  }
};

}  // namespace

fs::path ensure_eval_bundle() {
  fs::path base = get_base_dir();
  fs::path bundle = base / "eval_bundle";
  if (fs::exists(bundle / "core.yaml")) return bundle;
  FileLock lock(base / "eval_bundle.zip.lock");
  if (fs::exists(bundle / "core.yaml")) return bundle;  // another rank finished while we waited
  fs::path zip = base / "eval_bundle.zip";
  std::string url = getenv_or("NANOCHAT_EVAL_BUNDLE_URL", kEvalBundleUrl);
  if (!fs::exists(zip)) {
    print0f("Downloading {}...", url);
    download_file(url, zip);
    print0f("Downloaded to {}", zip.string());
  }
  // Unzip into a temp dir, then move its eval_bundle/ into place in one rename.
  fs::path tmp = base / "eval_bundle.unzip.tmp";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  int rc = run_program({"unzip", "-q", "-o", zip.string(), "-d", tmp.string()});
  if (rc != 0) {
    fs::remove_all(tmp);
    fail("could not unzip {} (exit {}): install unzip (scripts/setup.sh does) or delete the file to download it again",
         zip.string(), rc);
  }
  fs::path inner = tmp / "eval_bundle";
  if (!fs::exists(inner / "core.yaml")) {
    fs::remove_all(tmp);
    fail("{} has no eval_bundle/core.yaml; delete it and run again to download a fresh copy", zip.string());
  }
  fs::rename(inner, bundle);
  fs::remove_all(tmp);
  print0f("Placed eval_bundle directory at {}", bundle.string());
  return bundle;
}

namespace {

// A CSV row with RFC 4180 quoting (descriptions in eval_meta_data.csv contain commas).
std::vector<std::string> parse_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        out.back() += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

}  // namespace

std::vector<CoreTask> load_core_tasks(const fs::path& bundle_dir) {
  fs::path yaml_path = bundle_dir / "core.yaml", csv_path = bundle_dir / "eval_meta_data.csv";
  // Random baselines by task label.
  std::map<std::string, double> baselines;
  {
    std::istringstream in(read_file(csv_path));
    std::string line;
    std::getline(in, line);
    auto header = parse_csv_line(line);
    auto col = [&](const char* name) {
      auto it = std::find(header.begin(), header.end(), name);
      if (it == header.end()) fail("{} has no '{}' column", csv_path.string(), name);
      return size_t(it - header.begin());
    };
    size_t label_col = col("Eval Task"), base_col = col("Random baseline");
    while (std::getline(in, line)) {
      if (line.empty() || line == "\r") continue;
      auto row = parse_csv_line(line);
      if (row.size() <= std::max(label_col, base_col)) fail("{}: short row '{}'", csv_path.string(), line);
      baselines[row[label_col]] = std::stod(row[base_col]);
    }
  }
  std::vector<CoreTask> tasks;
  try {
    YAML::Node root = YAML::LoadFile(yaml_path.string());
    for (const auto& t : root["icl_tasks"]) {
      CoreTask task;
      task.label = t["label"].as<std::string>();
      task.task_type = t["icl_task_type"].as<std::string>();
      task.dataset_uri = t["dataset_uri"].as<std::string>();
      task.num_fewshot = t["num_fewshot"][0].as<int>();  // a list; nanochat uses the first entry
      if (t["continuation_delimiter"]) task.continuation_delimiter = t["continuation_delimiter"].as<std::string>();
      if (task.task_type != "multiple_choice" && task.task_type != "schema" && task.task_type != "language_modeling")
        fail("{}: task {} has unknown icl_task_type '{}'", yaml_path.string(), task.label, task.task_type);
      auto it = baselines.find(task.label);
      if (it == baselines.end()) fail("{} has no random baseline for task {}", csv_path.string(), task.label);
      task.random_baseline = it->second;
      tasks.push_back(std::move(task));
    }
  } catch (const YAML::Exception& e) {
    fail("cannot read {}: {}", yaml_path.string(), e.what());
  }
  return tasks;
}

// ---------------------------------------------------------------------------------------------------------------
// Prompts

namespace {

// Decodes one code point at s[i] (no validation needed beyond bounds: whitespace is all we look for).
bool is_python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t utf8_len(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

uint32_t utf8_at(const std::string& s, size_t i, size_t n) {
  unsigned char c = s[i];
  if (n == 1) return c;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3F);
  return cp;
}

}  // namespace

std::string python_strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    size_t n = utf8_len(uint8_t(s[b]));
    if (b + n > e || !is_python_space(utf8_at(s, b, n))) break;
    b += n;
  }
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (uint8_t(s[start]) & 0xC0) == 0x80) --start;
    if (!is_python_space(utf8_at(s, start, e - start))) break;
    e = start;
  }
  return s.substr(b, e - b);
}

std::vector<std::string> render_core_prompts(const CoreTask& task, const json& item, const std::vector<json>& fewshot) {
  const std::string& d = task.continuation_delimiter;
  std::string prefix;
  std::vector<std::string> prompts;
  if (task.task_type == "multiple_choice") {
    for (const auto& ex : fewshot)
      prefix += ex.at("query").get<std::string>() + d +
                ex.at("choices").at(ex.at("gold").get<size_t>()).get<std::string>() + "\n\n";
    for (const auto& c : item.at("choices"))
      prompts.push_back(prefix + item.at("query").get<std::string>() + d + c.get<std::string>());
  } else if (task.task_type == "schema") {
    for (const auto& ex : fewshot)
      prefix += ex.at("context_options").at(ex.at("gold").get<size_t>()).get<std::string>() + d +
                ex.at("continuation").get<std::string>() + "\n\n";
    for (const auto& o : item.at("context_options"))
      prompts.push_back(prefix + o.get<std::string>() + d + item.at("continuation").get<std::string>());
  } else {
    for (const auto& ex : fewshot)
      prefix +=
          python_strip(ex.at("context").get<std::string>()) + d + ex.at("continuation").get<std::string>() + "\n\n";
    std::string ctx = prefix + python_strip(item.at("context").get<std::string>()) + d;
    prompts.push_back(python_strip(ctx));  // without: a trailing space delimiter disappears
    prompts.push_back(ctx + item.at("continuation").get<std::string>());
  }
  return prompts;
}

// ---------------------------------------------------------------------------------------------------------------
// Scoring

bool evaluate_core_example(GPT& model, const Tokenizer& tokenizer, const CoreTask& task, const std::vector<json>& data,
                           size_t idx) {
  const json& item = data[idx];
  std::vector<json> fewshot;
  if (task.num_fewshot > 0) {
    PyRandom rng(1234 + idx);
    std::vector<size_t> candidates;
    for (size_t i = 0; i < data.size(); ++i)
      if (i != idx) candidates.push_back(i);
    for (size_t j : rng.sample(candidates, size_t(task.num_fewshot))) fewshot.push_back(data[j]);
  }
  std::vector<std::string> prompts = render_core_prompts(task, item, fewshot);
  std::vector<std::vector<int32_t>> seqs = tokenizer.encode_batch(prompts, "<|bos|>", std::nullopt, 1);

  std::vector<size_t> starts, ends;
  if (task.task_type == "multiple_choice") {
    size_t common = seqs[0].size();
    for (const auto& s : seqs) {
      size_t n = 0;
      while (n < std::min(common, s.size()) && s[n] == seqs[0][n]) ++n;
      common = n;
    }
    for (const auto& s : seqs) starts.push_back(common), ends.push_back(s.size());
  } else if (task.task_type == "schema") {
    size_t common = seqs[0].size();
    for (const auto& s : seqs) {
      size_t n = 0;
      while (n < std::min(common, s.size()) && s[s.size() - 1 - n] == seqs[0][seqs[0].size() - 1 - n]) ++n;
      common = n;
    }
    for (const auto& s : seqs) ends.push_back(s.size()), starts.push_back(s.size() - common);
  } else {
    const auto& without = seqs[0];
    const auto& with = seqs[1];
    if (without.size() >= with.size() || !std::equal(without.begin(), without.end(), with.begin()))
      fail(
          "CORE task {} example {}: the prompt without its continuation does not tokenize to a prefix of the prompt "
          "with it",
          task.label, idx);
    starts = {without.size()};
    ends = {with.size()};
    seqs = {with};
  }

  // Right-pad with BOS into one batch; per-position loss against the input shifted left by one.
  size_t T = 0;
  for (const auto& s : seqs) T = std::max(T, s.size());
  const int64_t B = int64_t(seqs.size());
  torch::Tensor input = torch::full({B, int64_t(T)}, int64_t(tokenizer.get_bos_token_id()), torch::kInt64);
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < seqs[size_t(b)].size(); ++t) input[b][int64_t(t)] = int64_t(seqs[size_t(b)][t]);
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(input.to(model->get_device())).to(torch::kCPU);  // [B, T, V] fp32
  torch::Tensor targets = torch::roll(input, -1, 1);
  torch::Tensor losses =
      torch::nn::functional::cross_entropy(logits.view({B * int64_t(T), -1}), targets.view({-1}),
                                           torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
          .view({B, int64_t(T)});
  torch::Tensor predictions = logits.argmax(-1);

  if (task.task_type == "language_modeling") {
    int64_t s = int64_t(starts[0]), e = int64_t(ends[0]);
    return torch::equal(predictions[0].slice(0, s - 1, e - 1), input[0].slice(0, s, e));
  }
  // Lowest mean loss over the continuation wins; the first of equal means, like argmin.
  double best = std::numeric_limits<double>::infinity();
  int64_t pred = -1;
  for (int64_t b = 0; b < B; ++b) {
    double mean = losses[b].slice(0, int64_t(starts[size_t(b)]) - 1, int64_t(ends[size_t(b)]) - 1).mean().item<float>();
    if (pred < 0 || mean < best) best = mean, pred = b;
  }
  return pred == item.at("gold").get<int64_t>();
}

CoreResult evaluate_core(GPT& model, const Tokenizer& tokenizer, const fs::path& bundle_dir, int64_t max_per_task,
                         int rank, int world_size, const ReduceCounts& reduce) {
  CoreResult result;
  double centered_sum = 0.0;
  for (const CoreTask& task : load_core_tasks(bundle_dir)) {
    auto t0 = std::chrono::steady_clock::now();
    fs::path data_path = bundle_dir / "eval_data" / task.dataset_uri;
    std::vector<json> data;
    {
      std::istringstream in(read_file(data_path));
      std::string line;
      size_t lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        if (python_strip(line).empty()) continue;
        try {
          data.push_back(json::parse(line));
        } catch (const json::exception& e) {
          fail("{} line {}: {}", data_path.string(), lineno, e.what());
        }
      }
    }
    PyRandom shuffle_rng(1337);
    shuffle_rng.shuffle(data);
    if (max_per_task > 0 && int64_t(data.size()) > max_per_task) data.resize(size_t(max_per_task));

    std::vector<float> correct(data.size(), 0.0f);
    for (size_t i = size_t(rank); i < data.size(); i += size_t(world_size))
      correct[i] = evaluate_core_example(model, tokenizer, task, data, i) ? 1.0f : 0.0f;
    if (reduce) reduce(correct);
    // Python averages a float32 tensor: keep that rounding so accuracies match to the last digit.
    double accuracy = data.empty() ? 0.0 : torch::tensor(correct, torch::kFloat32).mean().item<float>();
    double b = 0.01 * task.random_baseline;
    double centered = (accuracy - b) / (1.0 - b);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print0f("Evaluating: {} ({}-shot, type: {})... accuracy: {:.4f} | centered: {:.4f} | time: {:.2f}s", task.label,
            task.num_fewshot, task.task_type, accuracy, centered, secs);
    result.tasks.push_back({task.label, accuracy, centered});
    centered_sum += centered;
  }
  result.core_metric = result.tasks.empty() ? 0.0 : centered_sum / double(result.tasks.size());
  return result;
}

}  // namespace nanochat
