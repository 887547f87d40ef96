// chat_eval: evaluate a chat model on nanochat's chat tasks (scripts/chat_eval.py).
//
//   nanochat chat_eval -i sft                          # all six tasks, ChatCORE
//   nanochat chat_eval -i sft -a "ARC-Easy|GSM8K" -x 100
//   nanochat chat_eval -i rl -a GSM8K -n 8 -t 1.0      # pass@8 with sampling
//
// Categorical tasks (ARC-Easy, ARC-Challenge, MMLU) render each question for completion, run one forward pass per
// batch (right-padded with BOS) and pick the answer letter with the largest logit among the question's letters.
// Generative tasks (GSM8K, HumanEval, SpellingBee) sample completions with the engine (calculator tool on) and
// grade them with the task (HumanEval runs the code in the python3 sandbox). With one sample per problem, up to -b
// problems are decoded together by a BatchEngine where that provably gives the answers of one problem at a time
// (generative_batch_plan below; one log line says which). Datasets come from
// <base_dir>/datasets (tasks/task_data.h). Results are printed, and logged to the report section
// "Chat evaluation <source>" with ChatCORE when all six tasks ran.
// Several processes (nanochat launch -- chat_eval ...): ranks take every world_size-th batch or problem and the
// pass counts are summed, so the scores equal one process's.
#include "scripts/chat_eval.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "nanochat/batch_engine.h"
#include "nanochat/cpu/small_linear.h"
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


// Python's chat_eval seeds every problem's generation with 42; so do both paths here.
constexpr uint64_t kSeed = 42;

// The batch engine's worker threads. Destroyed (on success or on an exception in the grading loop) before the
// BatchEngine they call into: they are told to stop, their conversations end at the next token, and they are joined.
struct Workers {
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  void join() {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  ~Workers() {
    stop = true;
    join();
  }
};

}  // namespace

// When are batched answers the answers of one problem at a time, token for token? One at a time is
// Engine::generate_batch(prompt, 1, ...): a batch-1 prefill of the whole prompt, then batch-1 decode steps, sampling
// from a generator seeded with 42. A BatchEngine conversation (seed 42 too) gets the same prefill when the prompt is
// prefilled in one chunk (prefill_chunk >= the model's context), the same generator stream (its own, consumed once
// per step, as Engine's single row; at temperature 0 it is an argmax anyway), the same tool state machine and
// stops. What can differ is the fp arithmetic of a decode step holding several rows:
//   - on the CPU in fp32 with the fused decode step (nanochat/cpu/decode.cpp), every per-row op (norms, rotary,
//     attention over the row's own keys) is computed row by row, and the matrix products use small_linear, which
//     gives each row the same summation order for 1..kSmallLinearMaxRows (4) rows; past 4 rows they go to BLAS gemm,
//     whose blocking differs from one row's, and the logits can differ in the last bits;
//     the logits' softcap (x / 15, tanh, * 15) is elementwise; the one place a row's offset in the batch could show
//     is ATen's choice between its vectorized tanh and the scalar loop for a block's tail, and the two agreed on
//     every one of 20,000 values checked (libtorch 2.11, AVX2);
//   - on CUDA, in bf16 and on libtorch's generic path, batched kernels pick other reductions.
// A last-bit difference can flip a near-tie argmax and change the rest of an answer, so batching is on by default
// only in the first case, with up to 4 rows. --inexact-batch lifts the limit for speed where exactness is not needed.
GenerativeBatchPlan generative_batch_plan(const GPT& model, int64_t batch_size, int num_samples, bool inexact_batch) {
  GenerativeBatchPlan plan;
  if (num_samples > 1) {
    plan.why = fmt::format("{} samples per problem: Engine batches each problem's samples", num_samples);
    return plan;
  }
  if (batch_size <= 1) {
    plan.why = "batch size 1";
    return plan;
  }
  bool fp32_cpu = model->get_device().is_cpu() && compute_dtype() == torch::kFloat32 && model->fused_decode;
  for (const auto& p : model->parameters()) fp32_cpu = fp32_cpu && p.scalar_type() == torch::kFloat32;
  const int64_t exact_rows = fp32_cpu ? std::min<int64_t>(batch_size, kSmallLinearMaxRows) : 1;
  if (inexact_batch && batch_size > exact_rows) {
    plan.rows = int(batch_size);
    plan.exact = false;
    plan.why = "--inexact-batch: answers may differ from one problem at a time by fp rounding";
  } else if (exact_rows > 1) {
    plan.rows = int(exact_rows);
    plan.why = fmt::format(
        "CPU fp32 decode sums each of up to {} rows in one row's order and each prompt is prefilled in one pass, so "
        "the answers equal one problem at a time{}",
        kSmallLinearMaxRows, batch_size > exact_rows ? "; --inexact-batch for more rows" : "");
  } else {
    plan.why = fmt::format("on {} in {} batched decoding rounds differently from one problem at a time "
                           "(--inexact-batch to batch anyway)",
                           model->get_device().str(), torch::toString(compute_dtype()));
  }
  return plan;
}

double run_generative(const Task& task, const Tokenizer& tokenizer, Engine& engine, int rows, int num_samples,
                      int max_new_tokens, double temperature, int64_t top_k, int64_t num_problems,
                      std::vector<std::vector<std::string>>* completions) {
  std::vector<int64_t> mine;  // ranks take every world_size-th problem
  for (int64_t i = dist_rank(); i < num_problems; i += dist_world_size()) mine.push_back(i);
  int64_t passed = 0, total = 0, generated = 0;  // generated: completion tokens, the ending token excluded
  // Grading and the running line, in problem order whichever path decoded the problem.
  auto grade = [&](const Conversation& conv, std::vector<std::string> samples, int64_t num_tokens) {
    generated += num_tokens;
    bool ok = false;
    for (auto& s : samples)
      if (task.evaluate(conv, s)) ok = true;
    passed += ok;
    total++;
    if (completions) completions->push_back(std::move(samples));
    if (is_master_process()) {
      std::printf("\r\033[KRank 0 | %lld/%lld (%.2f%%)", (long long)passed, (long long)total,
                  100.0 * double(passed) / double(total));
      std::fflush(stdout);
    }
  };
  auto alone = [&](const std::vector<int32_t>& prompt) {
    auto [seqs, masks] = engine.generate_batch(prompt, num_samples, max_new_tokens, temperature, top_k, kSeed);
    std::pair<std::vector<std::string>, int64_t> out;
    for (auto& seq : seqs) {
      out.first.push_back(tokenizer.decode(std::vector<int32_t>(seq.begin() + int64_t(prompt.size()), seq.end())));
      out.second += int64_t(seq.size() - prompt.size());
    }
    return out;
  };

  if (rows <= 1 || num_samples != 1) {
    for (int64_t i : mine) {
      Conversation conv = task[i];
      auto [samples, num_tokens] = alone(tokenizer.render_for_completion(conv));
      grade(conv, std::move(samples), num_tokens);
    }
  } else {
    // Up to `rows` problems decoded together: 2 * rows worker threads each take the next problem and block in
    // BatchEngine::generate (so a freed row is refilled at once), the main thread grades replies in problem order
    // as they arrive. A problem whose prompt plus max_new_tokens exceeds the model's context does not fit a batch
    // row (Engine's cache grows past it); it runs alone, after the batch is done, so that one model never runs in
    // two threads at once.
    const size_t m = mine.size();
    const int64_t context = engine.model()->config.sequence_len;
    std::vector<Conversation> convs(m);
    std::vector<std::vector<int32_t>> prompts(m);
    std::vector<size_t> queue;  // positions in `mine` for the batch, in problem order
    std::vector<bool> batched(m, false);
    for (size_t j = 0; j < m; ++j) {
      convs[j] = task[mine[j]];
      prompts[j] = tokenizer.render_for_completion(convs[j]);
      const int64_t T = int64_t(prompts[j].size());
      if (T < context && (max_new_tokens < 0 || T + max_new_tokens <= context)) {
        queue.push_back(j);
        batched[j] = true;
      }
    }
    const int32_t assistant_end = tokenizer.encode_special("<|assistant_end|>"), bos = tokenizer.get_bos_token_id();
    BatchEngine batcher(engine.model(), tokenizer, rows, /*prefill_chunk=*/context, /*prefix_cache_bytes=*/0);
    std::mutex mu;  // guards replies and error
    std::condition_variable cv;
    std::vector<std::optional<std::vector<int32_t>>> replies(m);
    std::exception_ptr error;
    std::atomic<size_t> next{0};
    Workers workers;
    auto work = [&] {
      for (size_t q; !workers.stop && (q = next++) < queue.size();) {
        const size_t j = queue[q];
        std::vector<int32_t> reply;  // as generate_batch returns it: up to the ending token, without it
        bool ended = false;
        try {
          batcher.generate(prompts[j], max_new_tokens, temperature, top_k, kSeed, [&](int32_t t) {
            if (t == assistant_end || t == bos) ended = true;
            if (!ended) reply.push_back(t);
            return !ended && !workers.stop;
          });
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          workers.stop = true;
          cv.notify_all();
          return;
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          replies[j] = std::move(reply);
        }
        cv.notify_all();
      }
    };
    for (size_t w = 0; w < std::min(2 * size_t(rows), queue.size()); ++w) workers.threads.emplace_back(work);
    for (size_t j = 0; j < m; ++j) {
      if (!batched[j]) {
        workers.join();  // every batched problem is decoded (or failed) by now
        if (error) std::rethrow_exception(error);
        auto [samples, num_tokens] = alone(prompts[j]);
        grade(convs[j], std::move(samples), num_tokens);
        continue;
      }
      std::vector<int32_t> reply;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return replies[j].has_value() || error; });
        if (!replies[j]) std::rethrow_exception(error);  // ~Workers stops and joins the rest
        reply = std::move(*replies[j]);
      }
      grade(convs[j], {tokenizer.decode(reply)}, int64_t(reply.size()));
    }
  }
  passed = int64_t(all_reduce(double(passed)));
  total = int64_t(all_reduce(double(total)));
  generated = int64_t(all_reduce(double(generated)));
  print0("");
  print0(std::string(50, '='));
  print0f("Final: {}/{} ({:.2f}%)", passed, total, total ? 100.0 * double(passed) / double(total) : 0.0);
  print0f("Generated {} tokens", generated);
  return total ? double(passed) / double(total) : 0.0;
}

double run_chat_eval(const std::string& name, GPT& model, const Tokenizer& tokenizer, Engine& engine,
                     int64_t batch_size, int num_samples, int max_new_tokens, double temperature, int64_t top_k,
                     std::optional<int64_t> max_problems, bool inexact_batch) {
  TaskPtr task = make_chat_eval_task(name);
  int64_t n = task->size();
  if (max_problems && *max_problems >= 0) n = std::min(n, *max_problems);
  if (batch_size < 1) fail("batch size must be at least 1, got {}", batch_size);
  if (num_samples < 1) fail("num samples must be at least 1, got {}", num_samples);
  std::string type = task->eval_type();
  if (type == "categorical") return run_categorical(*task, model, tokenizer, batch_size, n);
  if (type == "generative") {
    GenerativeBatchPlan plan = generative_batch_plan(model, batch_size, num_samples, inexact_batch);
    if (plan.rows > 1) plan.rows = int(std::min<int64_t>(plan.rows, std::max<int64_t>(1, n)));  // no idle rows
    print0f("{}: {} ({})", name,
            plan.rows > 1 ? fmt::format("{} problems decoded together", plan.rows) : "one problem at a time", plan.why);
    return run_generative(*task, tokenizer, engine, plan.rows, num_samples, max_new_tokens, temperature, top_k, n);
  }
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
  bool inexact_batch = false;
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
  app.add_option("-b,--batch-size", batch_size,
                 "problems per forward pass (categorical) / decoded together (generative, one sample each; on CPU "
                 "in fp32 at most 4, where the answers equal one at a time)");
  app.add_flag("--inexact-batch", inexact_batch,
               "decode --batch-size generative problems together even where fp rounding may change answers "
               "(CUDA, bf16, more than 4 rows)");
  app.add_option("-g,--model-tag", model_tag, "model tag to load (default: largest)");
  app.add_option("-s,--step", step, "step to load (default: last)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  app.add_option("-x,--max-problems", max_problems, "max problems per task (default: all)");
  app.add_option("--device-type", device_type, "cuda|cpu|mps (empty = autodetect)")
      ->check(CLI::IsMember({"", "cuda", "cpu", "mps"}));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_decode_omp_wait(argc, argv);
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
                               temperature, top_k, max_problems >= 0 ? std::optional(max_problems) : std::nullopt,
                               inexact_batch);
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
  config["inexact_batch"] = inexact_batch;
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
