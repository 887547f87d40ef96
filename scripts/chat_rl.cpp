// chat_rl: reinforcement learning on GSM8K (nanochat's scripts/chat_rl.py) — on-policy REINFORCE with
// a per-question mean baseline ("GRPO" without ratios, clipping or KL), token-level normalization.
//
//   nanochat chat_rl                                   # from the last SFT checkpoint, one epoch over GSM8K train
//   nanochat chat_rl --num-epochs=1 --examples-per-step=4 --num-samples=8 --device-batch-size=4 --max-new-tokens=64
//
// Each step samples --num-samples completions for each of --examples-per-step training questions (calculator tool
// on, seeds from Python's tuple hash of (step, question, sampling round)), rewards them with GSM8K's answer check,
// subtracts each question's mean reward, and ascends Σ logp·advantage over the sampled tokens (prompt, forced tool
// outputs and padding excluded). LR decays linearly to 0. Every --eval-every steps: pass@1..k on GSM8K test (k =
// --device-batch-size). Checkpoints (model and meta only) go to chatrl_checkpoints/<tag>/ every --save-every steps
// and at the last step; report section "Chat RL".
// Datasets: openai/gsm8k main train/test under <base_dir>/datasets (tasks/task_data.h).
// Several processes (nanochat launch -- chat_rl ...): ranks take alternate questions, pass@k counts are summed,
// the mean reward averaged, the optimizer averages the gradients; rank 0 logs and saves.
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include "nanochat/cpu/threads.h"
#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/logger.h"
#include "nanochat/optim.h"
#include "nanochat/formats/pyrandom.h"
#include "nanochat/report.h"
#include "nanochat/schedules.h"
#include "tasks/task_data.h"
#include "scripts/chat_common.h"

using namespace nanochat;

namespace {

struct Options {
  std::string run = "dummy", device_type, model_tag, logger = "auto";
  int64_t model_step = -1, num_epochs = 1, device_batch_size = 8, examples_per_step = 16, num_samples = 16,
          max_new_tokens = 256, top_k = 50, eval_every = 60, eval_examples = 400, save_every = 60;
  double temperature = 1.0, embedding_lr = 0.2, unembedding_lr = 0.004, matrix_lr = 0.02, weight_decay = 0.0,
         init_lr_frac = 0.05;
};

// Samples and rewards for one question, ready for the policy-gradient passes.
struct Rollout {
  torch::Tensor inputs, targets, rewards, advantages;  // [N, T-1] int64 ×2, [N] fp32 ×2
  int64_t sequence_length_sum = 0;
};

Rollout rollout(Engine& engine, const Tokenizer& tok, const Task& task, int64_t example_idx, int64_t step,
                const Options& o, const torch::Device& device) {
  nlohmann::json conv = task_example(task, example_idx);
  auto prompt = tok.render_for_completion(conv);
  const size_t prefix_len = prompt.size();
  std::vector<std::vector<int32_t>> seqs, masks;
  const int64_t rounds = o.num_samples / o.device_batch_size;
  for (int64_t s = 0; s < rounds; s++) {
    uint64_t seed = uint64_t(python_tuple_hash({step, example_idx, s})) & 0x7FFFFFFFULL;
    auto [sq, mk] =
        engine.generate_batch(prompt, int(o.device_batch_size), int(o.max_new_tokens), o.temperature, o.top_k, seed);
    seqs.insert(seqs.end(), sq.begin(), sq.end());
    masks.insert(masks.end(), mk.begin(), mk.end());
  }
  Rollout r;
  const int64_t n = int64_t(seqs.size());
  std::vector<float> rewards(size_t(n), 0.0f);
  size_t max_len = 0;
  for (int64_t i = 0; i < n; i++) {
    std::vector<int32_t> completion(seqs[size_t(i)].begin() + int64_t(prefix_len), seqs[size_t(i)].end());
    rewards[size_t(i)] = float(task_reward(task, conv, tok.decode(completion)));
    max_len = std::max(max_len, seqs[size_t(i)].size());
    r.sequence_length_sum += int64_t(seqs[size_t(i)].size());
  }
  // Right-pad with <|assistant_end|> (mask 0); inputs/targets are the shifted ids, untrained targets are -1.
  const int32_t pad = tok.encode_special("<|assistant_end|>");
  auto ids = torch::full({n, int64_t(max_len)}, int64_t(pad), torch::kInt64);
  auto msk = torch::zeros({n, int64_t(max_len)}, torch::kInt64);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = msk.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; i++)
    for (size_t t = 0; t < seqs[size_t(i)].size(); t++) {
      ia[i][int64_t(t)] = seqs[size_t(i)][t];
      ma[i][int64_t(t)] = masks[size_t(i)][t];
    }
  using torch::indexing::Slice;
  r.inputs = ids.index({Slice(), Slice(0, -1)}).contiguous();
  r.targets = ids.index({Slice(), Slice(1, torch::indexing::None)}).clone();
  r.targets.masked_fill_(msk.index({Slice(), Slice(1, torch::indexing::None)}) == 0, -1);
  r.rewards = torch::tensor(rewards);
  r.advantages = r.rewards - r.rewards.mean();
  r.inputs = r.inputs.to(device);
  r.targets = r.targets.to(device);
  r.advantages = r.advantages.to(device);
  return r;
}

// pass@k for k = 1..device_batch_size over the first eval_examples test questions.
std::vector<double> pass_at_k(Engine& engine, const Tokenizer& tok, const Task& task, const Options& o) {
  int64_t n = std::min(o.eval_examples, task_size(task));
  std::vector<float> passk(size_t(o.device_batch_size), 0.f);     // counts; float so one all_reduce sums them all
  for (int64_t i = dist_rank(); i < n; i += dist_world_size()) {  // ranks take every world_size-th question
    nlohmann::json conv = task_example(task, i);
    auto prompt = tok.render_for_completion(conv);
    auto [seqs, masks] =
        engine.generate_batch(prompt, int(o.device_batch_size), int(o.max_new_tokens), o.temperature, o.top_k, 42);
    bool any = false;
    for (size_t k = 0; k < seqs.size() && k < passk.size(); k++) {
      std::vector<int32_t> completion(seqs[k].begin() + int64_t(prompt.size()), seqs[k].end());
      any = any || task_evaluate(task, conv, tok.decode(completion)) == 1;
      if (any) passk[k] += 1.f;
    }
  }
  all_reduce(passk, Reduce::sum);
  std::vector<double> out;
  for (float p : passk) out.push_back(n > 0 ? double(p) / double(n) : 0.0);
  return out;
}

}  // namespace

int chat_rl_main(int argc, char** argv) {
  Options o;
  Flags app{"Reinforcement learning on GSM8K (simplified GRPO / REINFORCE)", "nanochat chat_rl"};
  app.add_option("--run", o.run, "run name for the experiment logger ('dummy' disables the tracker)");
  app.add_option("--logger", o.logger, "metrics backend: auto|tensorboard|jsonl|none (see nanochat/logger.h)");
  app.add_option("--device-type", o.device_type, "cuda|cpu (empty = autodetect)");
  app.add_option("--model-tag", o.model_tag, "SFT model tag to load, also the output directory name");
  app.add_option("--model-step", o.model_step, "SFT model step to load (default: last)");
  app.add_option("--num-epochs", o.num_epochs, "number of epochs over GSM8K train");
  app.add_option("--device-batch-size", o.device_batch_size,
                 "max rows per forward pass (also samples per generate call and k of pass@k)");
  app.add_option("--examples-per-step", o.examples_per_step, "questions per optimizer step");
  app.add_option("--num-samples", o.num_samples, "completions sampled per question");
  app.add_option("--max-new-tokens", o.max_new_tokens, "max tokens per completion");
  app.add_option("--temperature", o.temperature, "sampling temperature");
  app.add_option("--top-k", o.top_k, "top-k sampling (0 = disabled)");
  app.add_option("--embedding-lr", o.embedding_lr, "learning rate for embedding parameters (Adam)");
  app.add_option("--unembedding-lr", o.unembedding_lr, "learning rate for unembedding parameters (Adam)");
  app.add_option("--matrix-lr", o.matrix_lr, "learning rate for matrix parameters (Muon)");
  app.add_option("--weight-decay", o.weight_decay, "weight decay of the Muon matrices");
  app.add_option("--init-lr-frac", o.init_lr_frac, "initial LR as a fraction of the base LR");
  app.add_option("--eval-every", o.eval_every, "evaluate pass@k every N steps");
  app.add_option("--eval-examples", o.eval_examples, "number of test questions for pass@k");
  app.add_option("--save-every", o.save_every, "save a checkpoint every N steps");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_passive_omp_wait(argc, argv);
  configure_cpu_threads();
  if (o.device_batch_size < 1 || o.num_samples < 1 || o.examples_per_step < 1 || o.num_epochs < 1)
    fail("--device-batch-size, --num-samples, --examples-per-step and --num-epochs must be positive");
  if (o.num_samples % o.device_batch_size != 0)
    fail("--num-samples ({}) must be a multiple of --device-batch-size ({})", o.num_samples, o.device_batch_size);
  if (o.eval_every < 1 || o.save_every < 1) fail("--eval-every and --save-every must be positive");

  nlohmann::ordered_json user_config;
  user_config["run"] = o.run;
  user_config["device_type"] = o.device_type;
  user_config["model_tag"] =
      o.model_tag.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(o.model_tag);
  user_config["model_step"] =
      o.model_step >= 0 ? nlohmann::ordered_json(o.model_step) : nlohmann::ordered_json(nullptr);
  user_config["num_epochs"] = o.num_epochs;
  user_config["device_batch_size"] = o.device_batch_size;
  user_config["examples_per_step"] = o.examples_per_step;
  user_config["num_samples"] = o.num_samples;
  user_config["max_new_tokens"] = o.max_new_tokens;
  user_config["temperature"] = o.temperature;
  user_config["top_k"] = o.top_k;
  user_config["embedding_lr"] = o.embedding_lr;
  user_config["unembedding_lr"] = o.unembedding_lr;
  user_config["matrix_lr"] = o.matrix_lr;
  user_config["weight_decay"] = o.weight_decay;
  user_config["init_lr_frac"] = o.init_lr_frac;
  user_config["eval_every"] = o.eval_every;
  user_config["eval_examples"] = o.eval_examples;
  user_config["save_every"] = o.save_every;
  user_config["logger"] = o.logger;

  ComputeContext ctx = compute_init(o.device_type);
  if (o.examples_per_step % ctx.world_size != 0) fail("--examples-per-step must be divisible by the world size");
  Logger logger = ctx.rank == 0 ? Logger("nanochat-rl", o.run, o.logger, user_config) : Logger();
  LoadedModel lm =
      load_model("sft", ctx.device, "eval", o.model_tag.empty() ? std::nullopt : std::optional(o.model_tag),
                 o.model_step >= 0 ? std::optional(o.model_step) : std::nullopt);
  GPT model = lm.model;
  const Tokenizer& tok = lm.tokenizer;
  Engine engine(model, tok);
  std::string output_dirname = o.model_tag.empty() ? fmt::format("d{}", model->config.n_layer) : o.model_tag;

  TaskPtr train_task = make_task("GSM8K", "train", "train");
  TaskPtr val_task = make_task("GSM8K", "test", "test");
  const int64_t train_size = task_size(*train_task);
  const int64_t num_steps = (train_size / o.examples_per_step) * o.num_epochs;
  print0f("Calculated number of steps: {}", num_steps);
  if (num_steps < 1)
    fail("GSM8K train has {} questions, fewer than --examples-per-step {}: lower --examples-per-step", train_size,
         o.examples_per_step);

  MuonAdamW optimizer =
      setup_optimizer(model->state_dict(), model->config.n_embd, o.unembedding_lr, o.embedding_lr, o.matrix_lr,
                      o.weight_decay, 0.5, process_group());  // several ranks: step() averages the gradients
  for (auto& g : optimizer.param_groups()) {
    g.lr *= o.init_lr_frac;
    g.initial_lr = g.lr;
  }

  const int64_t examples_per_rank = o.examples_per_step / ctx.world_size;
  const int64_t num_passes = o.num_samples / o.device_batch_size;
  int64_t cursor = ctx.rank;  // the rollout generator cycles over rank, rank+ws, ...
  for (int64_t step = 0; step < num_steps; step++) {
    if (step % o.eval_every == 0) {
      model->eval();
      auto passk = pass_at_k(engine, tok, *val_task, o);
      std::string line = fmt::format("Step {} |", step);
      std::map<std::string, double> m;
      for (size_t k = 0; k < passk.size(); k++) {
        line += fmt::format("{} Pass@{}: {:.4f}", k ? "," : "", k + 1, passk[k]);
        m[fmt::format("pass@{}", k + 1)] = passk[k];
      }
      print0(line);
      logger.log(step, m);
    }

    auto t0 = std::chrono::steady_clock::now();
    std::vector<double> mean_rewards;
    double seq_len_sum = 0, seq_count = 0;
    for (int64_t e = 0; e < examples_per_rank; e++) {
      int64_t example_idx = cursor;
      cursor += ctx.world_size;
      if (cursor >= train_size) cursor = ctx.rank;
      model->eval();
      Rollout r = rollout(engine, tok, *train_task, example_idx, step, o, ctx.device);
      model->train();
      mean_rewards.push_back(r.rewards.mean().item<double>());
      seq_len_sum += double(r.sequence_length_sum);
      seq_count += double(r.rewards.size(0));
      for (int64_t p = 0; p < num_passes; p++) {
        int64_t b0 = p * o.device_batch_size, b1 = b0 + o.device_batch_size;
        using torch::indexing::Slice;
        auto inputs = r.inputs.index({Slice(b0, b1)});
        auto targets = r.targets.index({Slice(b0, b1)});
        auto adv = r.advantages.index({Slice(b0, b1)});
        auto logp = -model->forward(inputs, targets, nullptr, "none").view({inputs.size(0), inputs.size(1)});
        auto obj = (logp * adv.unsqueeze(1)).sum();
        double num_valid = std::max<double>(1.0, double((targets >= 0).sum().item<int64_t>()));
        obj = obj / (num_valid * double(num_passes) * double(examples_per_rank));
        auto loss = -obj;
        loss.backward();
        print0f("Step {}/{} | Example step {} | Pass {} | loss: {:.6f} | Average reward: {:.4f}", step, num_steps, e, p,
                loss.item<double>(), r.rewards.index({Slice(b0, b1)}).mean().item<double>());
      }
    }
    double mean_reward = std::accumulate(mean_rewards.begin(), mean_rewards.end(), 0.0) / double(mean_rewards.size());
    double mean_seq_len = seq_count > 0 ? seq_len_sum / seq_count : 0.0;
    mean_reward = all_reduce(mean_reward, Reduce::avg);  // every rank has examples_per_rank questions
    mean_seq_len = all_reduce(mean_seq_len, Reduce::avg);
    print0f("Step {}/{} | Average reward: {:.4f} | Average sequence length: {:.2f}", step, num_steps, mean_reward,
            mean_seq_len);
    logger.log(step, {{"reward", mean_reward}, {"sequence_length", mean_seq_len}});

    double lrm = rl_lr_multiplier(step, num_steps);
    for (auto& g : optimizer.param_groups()) g.lr = g.initial_lr * lrm;
    with_collectives("the optimizer step", [&] { optimizer.step(); });
    optimizer.zero_grad();
    logger.log(step, {{"lrm", lrm}});
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    print0f("Step {}/{} | lrm: {:.4f} | dt: {:.2f}s", step, num_steps, lrm, dt);

    if ((step > 0 && step % o.save_every == 0) || step == num_steps - 1) {
      nlohmann::ordered_json meta;
      meta["model_config"] = config_to_json(model->config);
      auto dir = checkpoints_dir_for("rl") / output_dirname;
      save_checkpoint(dir, step, model->state_dict(), std::nullopt, meta, ctx.rank);
      print0f("✅ Saved model checkpoint to {}", dir.string());
    }
  }

  get_report().log("Chat RL", {user_config});
  logger.finish();
  compute_cleanup();
  return 0;
}
