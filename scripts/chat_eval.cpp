// chat_eval: evaluate a chat model on nanochat's chat tasks (scripts/chat_eval.py).
//
//   nanochat chat_eval -i sft                          # all six tasks, ChatCORE
//   nanochat chat_eval -i sft -a "ARC-Easy|GSM8K" -x 100
//   nanochat chat_eval -i rl -a GSM8K -n 8 -t 1.0      # pass@8 with sampling
//
// Categorical tasks (ARC-Easy, ARC-Challenge, MMLU) render each question for completion, run one forward pass per
// batch (right-padded with BOS) and pick the answer letter with the largest logit among the question's letters.
// Generative tasks (GSM8K, HumanEval, SpellingBee) sample completions with the engine (calculator tool on) and
// grade them with the task (HumanEval runs the code in the python3 sandbox). Datasets come from
// <base_dir>/datasets (tasks/task_data.h). Results are printed, and logged to the report section
// "Chat evaluation <source>" with ChatCORE when all six tasks ran.
// Several processes (nanochat launch -- chat_eval ...): ranks take every world_size-th batch or problem and the
// pass counts are summed, so the scores equal one process's.
#include "scripts/chat_eval.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "nanochat/cpu/threads.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/cli/flags.h"
#include "nanochat/report.h"
#include "tasks/task_data.h"
#include "scripts/chat_common.h"
#include "tasks/common.h"

namespace nanochat {

namespace {

double run_categorical(const Task& task, GPT& model, const Tokenizer& tokenizer, int64_t batch_size,
                       int64_t num_problems) {
  torch::NoGradGuard no_grad;
  const int32_t bos = tokenizer.get_bos_token_id();
  std::map<std::string, int32_t> letter_ids;  // each letter must be exactly one token
  auto letter_id = [&](const std::string& letter) {
    auto it = letter_ids.find(letter);
    if (it != letter_ids.end()) return it->second;
    auto ids = tokenizer.encode(letter);
    if (ids.size() != 1)
      fail("answer letter '{}' encodes to {} tokens; categorical evaluation needs exactly one", letter, ids.size());
    return letter_ids[letter] = ids[0];
  };
  const torch::Device device = model->get_device();
  int64_t passed = 0, total = 0;
  int64_t num_batches = (num_problems + batch_size - 1) / batch_size;
  for (int64_t b = dist_rank(); b < num_batches; b += dist_world_size()) {  // ranks take every world_size-th batch
    int64_t i0 = b * batch_size, i1 = std::min(num_problems, i0 + batch_size);
    std::vector<Conversation> convs;
    std::vector<std::vector<int32_t>> prompts;
    size_t max_len = 0;
    for (int64_t i = i0; i < i1; i++) {
      convs.push_back(task[i]);
      prompts.push_back(tokenizer.render_for_completion(convs.back()));
      max_len = std::max(max_len, prompts.back().size());
    }
    auto idx = torch::full({int64_t(prompts.size()), int64_t(max_len)}, int64_t(bos), torch::kInt64);
    auto acc = idx.accessor<int64_t, 2>();
    for (size_t r = 0; r < prompts.size(); r++)
      for (size_t t = 0; t < prompts[r].size(); t++) acc[int64_t(r)][int64_t(t)] = prompts[r][t];
    auto logits = model->forward(idx.to(device)).to(torch::kCPU);  // [B, T, V]
    for (size_t r = 0; r < prompts.size(); r++) {
      const auto& letters = convs[r]["letters"];
      int64_t answer_pos = int64_t(prompts[r].size()) - 1;
      std::string best;
      float best_logit = -std::numeric_limits<float>::infinity();
      for (const auto& l : letters) {
        std::string letter = l.get<std::string>();
        float v = logits[int64_t(r)][answer_pos][letter_id(letter)].item<float>();
        if (best.empty() || v > best_logit) best = letter, best_logit = v;  // first max wins
      }
      passed += task.evaluate(convs[r], best);
      total++;
    }
  }
  passed = int64_t(all_reduce(double(passed)));
  total = int64_t(all_reduce(double(total)));
  print0f("Final: {}/{} ({:.2f}%)", passed, total, total ? 100.0 * double(passed) / double(total) : 0.0);
  return total ? double(passed) / double(total) : 0.0;
}

double run_generative(const Task& task, const Tokenizer& tokenizer, Engine& engine, int num_samples, int max_new_tokens,
                      double temperature, int64_t top_k, int64_t num_problems) {
  int64_t passed = 0, total = 0;
  for (int64_t i = dist_rank(); i < num_problems; i += dist_world_size()) {  // ranks take every world_size-th problem
    Conversation conv = task[i];
    auto prompt = tokenizer.render_for_completion(conv);
    auto [seqs, masks] = engine.generate_batch(prompt, num_samples, max_new_tokens, temperature, top_k, 42);
    bool ok = false;
    for (auto& seq : seqs) {
      std::vector<int32_t> completion(seq.begin() + int64_t(prompt.size()), seq.end());
      if (task.evaluate(conv, tokenizer.decode(completion))) ok = true;
    }
    passed += ok;
    total++;
    if (is_master_process()) {
      std::printf("\r\033[KRank 0 | %lld/%lld (%.2f%%)", (long long)passed, (long long)total,
                  100.0 * double(passed) / double(total));
      std::fflush(stdout);
    }
  }
  passed = int64_t(all_reduce(double(passed)));
  total = int64_t(all_reduce(double(total)));
  print0("");
  print0(std::string(50, '='));
  print0f("Final: {}/{} ({:.2f}%)", passed, total, total ? 100.0 * double(passed) / double(total) : 0.0);
  return total ? double(passed) / double(total) : 0.0;
}

}  // namespace

double run_chat_eval(const std::string& name, GPT& model, const Tokenizer& tokenizer, Engine& engine,
                     int64_t batch_size, int num_samples, int max_new_tokens, double temperature, int64_t top_k,
                     std::optional<int64_t> max_problems) {
  TaskPtr task = make_chat_eval_task(name);
  int64_t n = task->size();
  if (max_problems && *max_problems >= 0) n = std::min(n, *max_problems);
  if (batch_size < 1) fail("batch size must be at least 1, got {}", batch_size);
  if (num_samples < 1) fail("num samples must be at least 1, got {}", num_samples);
  std::string type = task->eval_type();
  if (type == "categorical") return run_categorical(*task, model, tokenizer, batch_size, n);
  if (type == "generative")
    return run_generative(*task, tokenizer, engine, num_samples, max_new_tokens, temperature, top_k, n);
  fail("task {} has unsupported eval type '{}'", name, type);
}

double chatcore_metric(const std::vector<std::pair<std::string, double>>& results) {
  if (results.empty()) return 0.0;
  double sum = 0;
  for (auto& [name, acc] : results) {
    double base = chat_eval_baseline(name);
    sum += (acc - base) / (1.0 - base);
  }
  return sum / double(results.size());
}

}  // namespace nanochat

using namespace nanochat;

int chat_eval_main(int argc, char** argv) {
  std::string source, task_name, model_tag, device_type;
  double temperature = 0.0;
  int max_new_tokens = 512, num_samples = 1;
  int64_t top_k = 50, batch_size = 8, step = -1, max_problems = -1;
  Flags app{"Evaluate a chat model on ARC, MMLU, GSM8K, HumanEval and SpellingBee", "nanochat chat_eval"};
  app.add_option("-i,--source", source, "model to evaluate: sft|rl (or base)")
      ->required()
      ->check(CLI::IsMember({"base", "sft", "rl"}));
  app.add_option("-a,--task-name", task_name, "task name(s) separated by '|' (default: all six)");
  app.add_option("-t,--temperature", temperature, "sampling temperature");
  app.add_option("-m,--max-new-tokens", max_new_tokens, "max tokens per generated answer");
  app.add_option("-n,--num-samples", num_samples, "samples per problem (pass@n for generative tasks)");
  app.add_option("-k,--top-k", top_k, "top-k sampling (0 = off)");
  app.add_option("-b,--batch-size", batch_size, "batch size for categorical evaluation");
  app.add_option("-g,--model-tag", model_tag, "model tag to load (default: largest)");
  app.add_option("-s,--step", step, "step to load (default: last)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  app.add_option("-x,--max-problems", max_problems, "max problems per task (default: all)");
  app.add_option("--device-type", device_type, "cuda|cpu|mps (empty = autodetect)")
      ->check(CLI::IsMember({"", "cuda", "cpu", "mps"}));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_passive_omp_wait(argc, argv);
  configure_cpu_threads();
  if (device_type == "mps") fail("--device-type mps is not available in this build (use cpu or cuda)");

  ComputeContext ctx = compute_init(device_type);
  LoadedModel lm = load_model(source, ctx.device, "eval", model_tag.empty() ? std::nullopt : std::optional(model_tag),
                              step >= 0 ? std::optional(step) : std::nullopt);
  Engine engine(lm.model, lm.tokenizer);

  std::vector<std::string> names;
  if (task_name.empty()) {
    names = chat_eval_task_names();
  } else {
    size_t start = 0;
    while (start <= task_name.size()) {
      size_t bar = task_name.find('|', start);
      std::string n = task_name.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      if (!n.empty()) names.push_back(n);
      start = bar == std::string::npos ? task_name.size() + 1 : bar + 1;
    }
  }
  for (auto& n : names) make_chat_eval_task(n);  // fail fast on an unknown name or a missing dataset

  std::vector<std::pair<std::string, double>> results;
  for (auto& name : names) {
    auto t0 = std::chrono::steady_clock::now();
    double acc = run_chat_eval(name, lm.model, lm.tokenizer, engine, batch_size, num_samples, max_new_tokens,
                               temperature, top_k, max_problems >= 0 ? std::optional(max_problems) : std::nullopt);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    results.emplace_back(name, acc);
    print0f("{} accuracy: {:.2f}%", name, 100.0 * acc);
    print0f("{} evaluation time: {:.2f}s", name, dt);
  }

  ReportItem config;
  config["source"] = source;
  config["task_name"] = task_name.empty() ? ReportItem(nullptr) : ReportItem(task_name);
  config["temperature"] = temperature;
  config["max_new_tokens"] = max_new_tokens;
  config["num_samples"] = num_samples;
  config["top_k"] = top_k;
  config["batch_size"] = batch_size;
  config["model_tag"] = model_tag.empty() ? ReportItem(nullptr) : ReportItem(model_tag);
  config["step"] = step >= 0 ? ReportItem(step) : ReportItem(nullptr);
  config["max_problems"] = max_problems >= 0 ? ReportItem(max_problems) : ReportItem(nullptr);
  config["device_type"] = device_type;
  ReportItem accs = ReportItem::object();
  for (auto& [n, a] : results) accs[n] = a;
  std::vector<ReportItem> items{config, accs};
  bool all_tasks = true;
  for (auto& n : chat_eval_task_names()) {
    bool found = false;
    for (auto& r : results) found = found || r.first == n;
    all_tasks = all_tasks && found;
  }
  if (all_tasks) {
    double chatcore = chatcore_metric(results);
    print0f("ChatCORE metric: {:.4f}", chatcore);
    ReportItem m;
    m["ChatCORE metric"] = chatcore;
    items.push_back(m);
  }
  get_report().log("Chat evaluation " + source, items);
  compute_cleanup();
  return 0;
}
