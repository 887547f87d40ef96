// chat_sft: supervised fine-tuning of a base model into a chat model (nanochat's scripts/chat_sft.py).
//
//   nanochat chat_sft                                   # nanochat's mixture, one epoch, settings inherited from base
//   nanochat chat_sft --mixture="SmolTalk,CustomJSON*2,SimpleSpelling:2000,SpellingBee:1000" \
//       --val-mixture="SmolTalk:test" --num-iterations=100 --chatcore-tasks="ARC-Easy|SpellingBee"
//
// Loads the last base checkpoint (with its optimizer state unless --load-optimizer=0), inherits max_seq_len,
// device_batch_size, total_batch_size and the learning rates from it unless given, and trains on a TaskMixture of
// conversations packed by the best-fit-with-padding loader (only assistant tokens are trained on). Every
// --eval-every steps: validation bits per byte; every --chatcore-every steps: ChatCORE (chat_eval's tasks).
// At the end: chatsft_checkpoints/<tag>/ (model, optimizer, meta) and the report section "SFT".
//
// Offline / custom data: --mixture and --val-mixture take a task list (syntax in tasks/task_data.h); "default" is
// nanochat's mixture (SmolTalk, identity conversations ×2, MMLU auxiliary_train × --mmlu-epochs, GSM8K ×
// --gsm8k-epochs, SimpleSpelling 200K, SpellingBee 80K; val: SmolTalk test, MMLU test[:5200], GSM8K test[:420]).
// --chatcore-tasks picks ChatCORE's tasks (default all six). Missing datasets fail with one line naming the file.
// Several processes (nanochat launch -- chat_sft ...): ranks take alternate conversations, the first rank to run out
// ends the run for all, val bpb and ChatCORE are summed over ranks, the optimizer averages the gradients and
// every rank saves its optimizer file. Each step line ends with an ETA (not in nanochat) from the pace since step 10.
// Not covered: fp16 loss scaling (the compute dtype here is fp32 or bf16).
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "nanochat/cpu/threads.h"
#include "nanochat/checkpoint_manager.h"
#include "nanochat/load_model.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/dataloader.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/logger.h"
#include "nanochat/optim.h"
#include "nanochat/report.h"
#include "nanochat/schedules.h"
#include "tasks/task_data.h"
#include "scripts/base_common.h"
#include "scripts/chat_common.h"
#include "scripts/chat_eval.h"

using namespace nanochat;

namespace {

struct Options {
  std::string run = "dummy", device_type, model_tag, logger = "auto";
  int64_t model_step = -1, load_optimizer = 1, num_iterations = -1;
  int64_t max_seq_len = 0, device_batch_size = 0, total_batch_size = 0;  // 0 until given: inherited
  double embedding_lr = 0, unembedding_lr = 0, matrix_lr = 0;            // idem
  double init_lr_frac = 0.8, warmup_ratio = 0.0, warmdown_ratio = 0.5, final_lr_frac = 0.0;
  int64_t eval_every = 200, eval_tokens = 40 * 524288, chatcore_every = 200, chatcore_max_cat = -1,
          chatcore_max_sample = 24, mmlu_epochs = 3, gsm8k_epochs = 4;
  std::string mixture = "default", val_mixture = "default",
              chatcore_tasks = "ARC-Easy|ARC-Challenge|MMLU|GSM8K|HumanEval|SpellingBee";
};

std::vector<std::string> split_bars(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t bar = s.find('|', start);
    std::string n = s.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (!n.empty()) out.push_back(n);
    start = bar == std::string::npos ? s.size() + 1 : bar + 1;
  }
  return out;
}

// A CLI value, or the pretrained one, or the fallback; prints what happened as nanochat does.
template <typename T>
T inherit(const char* name, bool given, T cli, const Json& source, T fallback) {
  bool has = source.is_object() && source.contains(name) && !source[name].is_null();
  T pretrained = has ? source[name].get<T>() : fallback;
  if (!given) {
    print0f("Inherited {}={} from pretrained checkpoint", name, pretrained);
    return pretrained;
  }
  if (has && cli != pretrained) print0f("NOTE: --{} value {} differs from pretrained value {}", name, cli, pretrained);
  return cli;
}

}  // namespace

int chat_sft_main(int argc, char** argv) {
  Options o;
  Flags app{"Supervised fine-tuning (SFT) of a base model into a chat model", "nanochat chat_sft"};
  app.add_option("--run", o.run, "run name for the experiment logger ('dummy' disables the tracker)");
  app.add_option("--logger", o.logger, "metrics backend: auto|tensorboard|jsonl|none (see nanochat/logger.h)");
  app.add_option("--device-type", o.device_type, "cuda|cpu (empty = autodetect)");
  app.add_option("--model-tag", o.model_tag, "base model tag to load, also the output directory name");
  app.add_option("--model-step", o.model_step, "base model step to load (default: last)");
  app.add_option("--load-optimizer", o.load_optimizer, "warm-start the optimizer from the base checkpoint (0/1)");
  app.add_option("--num-iterations", o.num_iterations, "number of optimization steps (-1 = one epoch of the mixture)");
  app.add_option("--max-seq-len", o.max_seq_len, "max context length (default: inherit from pretraining)");
  app.add_option("--device-batch-size", o.device_batch_size, "per-device batch size (default: inherit)");
  app.add_option("--total-batch-size", o.total_batch_size, "total batch size in tokens (default: inherit)");
  app.add_option("--embedding-lr", o.embedding_lr, "learning rate for embedding parameters (default: inherit)");
  app.add_option("--unembedding-lr", o.unembedding_lr, "learning rate for unembedding parameters (default: inherit)");
  app.add_option("--matrix-lr", o.matrix_lr, "learning rate for matrix parameters, Muon (default: inherit)");
  app.add_option("--init-lr-frac", o.init_lr_frac, "initial LR as a fraction of the base LR");
  app.add_option("--warmup-ratio", o.warmup_ratio, "ratio of training for LR warmup");
  app.add_option("--warmdown-ratio", o.warmdown_ratio, "ratio of training for LR warmdown");
  app.add_option("--final-lr-frac", o.final_lr_frac, "final LR as a fraction of the initial LR");
  app.add_option("--eval-every", o.eval_every, "evaluate val bpb every N steps (-1 = disable)");
  app.add_option("--eval-tokens", o.eval_tokens, "number of tokens to evaluate val loss on");
  app.add_option("--chatcore-every", o.chatcore_every, "evaluate ChatCORE every N steps (-1 = disable)");
  app.add_option("--chatcore-max-cat", o.chatcore_max_cat, "max problems per categorical task for ChatCORE (-1 = all)");
  app.add_option("--chatcore-max-sample", o.chatcore_max_sample, "max problems per generative task for ChatCORE");
  app.add_option("--mmlu-epochs", o.mmlu_epochs, "epochs of MMLU in the default training mixture");
  app.add_option("--gsm8k-epochs", o.gsm8k_epochs, "epochs of GSM8K in the default training mixture");
  app.add_option("--mixture", o.mixture,
                 "training tasks: 'default' or a list like \"SmolTalk,CustomJSON*2,SpellingBee:1000\"");
  app.add_option("--val-mixture", o.val_mixture, "validation tasks: 'default' or a task list (split defaults to test)");
  app.add_option("--chatcore-tasks", o.chatcore_tasks, "ChatCORE tasks separated by '|'");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_passive_omp_wait(argc, argv);
  configure_cpu_threads();
  bool given_seq = app.count("--max-seq-len"), given_dbs = app.count("--device-batch-size"),
       given_tbs = app.count("--total-batch-size"), given_elr = app.count("--embedding-lr"),
       given_ulr = app.count("--unembedding-lr"), given_mlr = app.count("--matrix-lr");

  // user_config: the flags as given, before inheritance (inherited values appear as null), as nanochat saves it.
  Json user_config;
  user_config["run"] = o.run;
  user_config["device_type"] = o.device_type;
  user_config["model_tag"] = o.model_tag.empty() ? Json(nullptr) : Json(o.model_tag);
  user_config["model_step"] = o.model_step >= 0 ? Json(o.model_step) : Json(nullptr);
  user_config["load_optimizer"] = o.load_optimizer;
  user_config["num_iterations"] = o.num_iterations;
  user_config["max_seq_len"] = given_seq ? Json(o.max_seq_len) : Json(nullptr);
  user_config["device_batch_size"] = given_dbs ? Json(o.device_batch_size) : Json(nullptr);
  user_config["total_batch_size"] = given_tbs ? Json(o.total_batch_size) : Json(nullptr);
  user_config["embedding_lr"] = given_elr ? Json(o.embedding_lr) : Json(nullptr);
  user_config["unembedding_lr"] = given_ulr ? Json(o.unembedding_lr) : Json(nullptr);
  user_config["matrix_lr"] = given_mlr ? Json(o.matrix_lr) : Json(nullptr);
  user_config["init_lr_frac"] = o.init_lr_frac;
  user_config["warmup_ratio"] = o.warmup_ratio;
  user_config["warmdown_ratio"] = o.warmdown_ratio;
  user_config["final_lr_frac"] = o.final_lr_frac;
  user_config["eval_every"] = o.eval_every;
  user_config["eval_tokens"] = o.eval_tokens;
  user_config["chatcore_every"] = o.chatcore_every;
  user_config["chatcore_max_cat"] = o.chatcore_max_cat;
  user_config["chatcore_max_sample"] = o.chatcore_max_sample;
  user_config["mmlu_epochs"] = o.mmlu_epochs;
  user_config["gsm8k_epochs"] = o.gsm8k_epochs;
  user_config["mixture"] = o.mixture;
  user_config["val_mixture"] = o.val_mixture;
  user_config["chatcore_tasks"] = o.chatcore_tasks;
  user_config["logger"] = o.logger;
  if (o.load_optimizer != 0 && o.load_optimizer != 1) fail("--load-optimizer must be 0 or 1, got {}", o.load_optimizer);

  ComputeContext ctx = compute_init(o.device_type);
  Logger logger = ctx.rank == 0 ? Logger("nanochat-sft", o.run, o.logger, user_config) : Logger();

  // Model, tokenizer and the pretraining meta (for inheritance).
  LoadedModel lm =
      load_model("base", ctx.device, "train", o.model_tag.empty() ? std::nullopt : std::optional(o.model_tag),
                 o.model_step >= 0 ? std::optional(o.model_step) : std::nullopt);
  GPT model = lm.model;
  const Tokenizer& tokenizer = lm.tokenizer;
  const Json& pre = lm.meta;
  Json pre_user = pre.contains("user_config") ? pre["user_config"] : Json::object();
  o.max_seq_len = inherit<int64_t>("max_seq_len", given_seq, o.max_seq_len, pre, 2048);
  o.device_batch_size = inherit<int64_t>("device_batch_size", given_dbs, o.device_batch_size, pre, 32);
  o.total_batch_size = inherit<int64_t>("total_batch_size", given_tbs, o.total_batch_size, pre, 524288);
  o.embedding_lr = inherit<double>("embedding_lr", given_elr, o.embedding_lr, pre_user, 0.3);
  o.unembedding_lr = inherit<double>("unembedding_lr", given_ulr, o.unembedding_lr, pre_user, 0.004);
  o.matrix_lr = inherit<double>("matrix_lr", given_mlr, o.matrix_lr, pre_user, 0.02);
  if (o.max_seq_len < 2 || o.device_batch_size < 1 || o.total_batch_size < 1)
    fail("max_seq_len, device_batch_size and total_batch_size must be positive");

  const GPTConfig& cfg = model->config;
  const int64_t depth = cfg.n_layer;
  std::string output_dirname = o.model_tag.empty() ? fmt::format("d{}", depth) : o.model_tag;
  const int64_t num_flops_per_token = model->estimate_flops();
  const int64_t tokens_per_fwdbwd = o.device_batch_size * o.max_seq_len;
  const int64_t world_tokens_per_fwdbwd = tokens_per_fwdbwd * ctx.world_size;
  if (o.total_batch_size % world_tokens_per_fwdbwd != 0)
    fail("--total-batch-size {} must be a multiple of device_batch_size × max_seq_len × world size = {}",
         o.total_batch_size, world_tokens_per_fwdbwd);
  const int64_t grad_accum_steps = o.total_batch_size / world_tokens_per_fwdbwd;
  print0f("Tokens / micro-batch / rank: {} x {} = {}", o.device_batch_size, o.max_seq_len, tokens_per_fwdbwd);
  print0f("Tokens / micro-batch: {}", world_tokens_per_fwdbwd);
  print0f("Total batch size {} => gradient accumulation steps: {}", o.total_batch_size, grad_accum_steps);

  // Optimizer, warm-started from the base run's state when asked (its saved LRs are replaced by the fresh ones).
  MuonAdamW optimizer = setup_optimizer(model->state_dict(), cfg.n_embd, o.unembedding_lr, o.embedding_lr, o.matrix_lr,
                                        0.0, 0.5, process_group());  // several ranks: step() averages the gradients
  if (o.load_optimizer) {
    const auto& base_dir = lm.dir;
    // Optimizer state is per rank: it only carries over to a run with the world size that saved it.
    const int saved_ranks = checkpoint_world_size(base_dir, lm.step);
    auto state = saved_ranks == ctx.world_size ? load_optimizer_state_from_dir(base_dir, lm.step, ctx.rank, ctx.device)
                                               : std::nullopt;
    if (saved_ranks > 0 && saved_ranks != ctx.world_size)
      print0f("WARNING: the base optimizer state was saved by {} ranks and this run has {}", saved_ranks,
              ctx.world_size);
    if (state) {
      std::vector<double> fresh;
      for (auto& g : optimizer.param_groups()) fresh.push_back(g.lr);
      optimizer.load_state_dict(*state);
      for (size_t i = 0; i < fresh.size(); i++) optimizer.param_groups()[i].lr = fresh[i];
      print0("Loaded optimizer state from pretrained checkpoint (momentum buffers only, LRs reset)");
    } else {
      print0("WARNING: optimizer checkpoint not found, starting with a fresh optimizer (slightly worse)");
    }
  }
  for (auto& g : optimizer.param_groups()) {
    g.lr *= o.init_lr_frac;
    g.initial_lr = g.lr;
  }

  // Data.
  TaskPtr train_ds = o.mixture == "default" ? sft_default_train_mixture(o.mmlu_epochs, o.gsm8k_epochs)
                                            : make_mixture(parse_task_list(o.mixture, "train"));
  TaskPtr val_ds =
      o.val_mixture == "default" ? sft_default_val_mixture() : make_mixture(parse_task_list(o.val_mixture, "test"));
  const int64_t train_size = task_size(*train_ds), val_size = task_size(*val_ds);
  print0f("Training mixture: {} conversations, validation mixture: {}", train_size, val_size);
  if (train_size == 0 || val_size == 0) fail("the training and validation mixtures must not be empty");
  auto render = [&](const TaskPtr& ds) {
    return [&tokenizer, ds](int64_t i) {
      auto [ids, mask] = tokenizer.render_conversation(task_example(*ds, i));
      return nanochat::TokenizedConversation{std::vector<int>(ids.begin(), ids.end()),
                                             std::vector<int>(mask.begin(), mask.end())};
    };
  };
  const int bos = tokenizer.get_bos_token_id();
  SftDataLoader train_loader(train_size, render(train_ds), bos, int(o.device_batch_size), int(o.max_seq_len), true,
                             o.num_iterations, ctx.device, ctx.rank, ctx.world_size);
  auto token_bytes = load_token_bytes(ctx.device, tokenizer.get_vocab_size());
  Engine engine(model, tokenizer);
  auto chatcore_names = split_bars(o.chatcore_tasks);
  if (o.chatcore_every > 0)
    for (auto& n : chatcore_names) make_chat_eval_task(n);  // fail before training when a dataset is missing

  // Training loop (the first batch is fetched before it, as nanochat does).
  SftBatch batch = train_loader.next();
  double progress = std::max(0.0, batch.approx_progress);
  int64_t step = 0;
  double min_val_bpb = std::numeric_limits<double>::infinity(), val_bpb = std::numeric_limits<double>::quiet_NaN();
  double smooth_train_loss = 0, total_training_time = 0;
  double timed_from_progress = -1;  // progress when the timing (and the ETA) starts, after step 10
  double peak_flops = std::numeric_limits<double>::infinity();  // MFU is not meaningful on the CPU
  if (ctx.device.is_cuda()) {
    std::string name = cuda_device_name(ctx.local_rank);
    peak_flops = get_peak_flops(name);
    print0f("GPU: {} | Peak FLOPS (BF16): {:.2e}", name, peak_flops);
  }
  peak_flops = peak_flops_override(peak_flops);
  while (true) {
    // Ranks run out of conversations at different steps: the first to finish ends the run for all.
    bool last_step = all_reduce(batch.last_step ? 1.0 : 0.0, Reduce::max) > 0;

    if (last_step || (o.eval_every > 0 && step % o.eval_every == 0)) {
      model->eval();
      SftDataLoader val_loader(val_size, render(val_ds), bos, int(o.device_batch_size), int(o.max_seq_len), false, -1,
                               ctx.device, ctx.rank, ctx.world_size);
      int64_t eval_steps = std::max<int64_t>(1, o.eval_tokens / (o.device_batch_size * o.max_seq_len * ctx.world_size));
      val_bpb = chat_bpb(
          model,
          [&] {
            auto b = val_loader.next();
            return std::pair{b.inputs, b.targets};
          },
          eval_steps, token_bytes);
      print0f("Step {:05d} | Validation bpb: {:.4f}", step, val_bpb);
      min_val_bpb = std::min(min_val_bpb, val_bpb);
      logger.log(step, {{"val/bpb", val_bpb}});
      model->train();
    }

    if (o.chatcore_every > 0 && (last_step || (step > 0 && step % o.chatcore_every == 0))) {
      model->eval();
      std::vector<std::pair<std::string, double>> results;
      std::vector<std::pair<std::string, double>> cat_results;
      for (auto& name : chatcore_names) {
        TaskPtr t = make_chat_eval_task(name);
        bool categorical = task_eval_type(*t) == "categorical";
        int64_t limit = categorical ? o.chatcore_max_cat : o.chatcore_max_sample;
        double acc = run_chat_eval(name, model, tokenizer, engine, o.device_batch_size, 1, 512, 0.0, 50,
                                   limit >= 0 ? std::optional(limit) : std::nullopt);
        print0f("  {}: {:.2f}%", name, 100.0 * acc);
        results.emplace_back(name, acc);
        if (categorical) cat_results.emplace_back(name, acc);
      }
      double chatcore = chatcore_metric(results), chatcore_cat = chatcore_metric(cat_results);
      print0f("Step {:05d} | ChatCORE: {:.4f} | ChatCORE_cat: {:.4f}", step, chatcore, chatcore_cat);
      std::map<std::string, double> m{{"chatcore_metric", chatcore}, {"chatcore_cat", chatcore_cat}};
      for (auto& [n, a] : results) m["chatcore/" + n] = a;
      logger.log(step, m);
      model->train();
    }

    if (last_step) {
      Json meta;
      meta["step"] = step;
      meta["val_bpb"] = std::isnan(val_bpb) ? Json(nullptr) : Json(val_bpb);
      GPTConfig out_cfg = cfg;
      out_cfg.sequence_len = o.max_seq_len;
      meta["model_config"] = config_to_json(out_cfg);
      meta["user_config"] = user_config;
      auto dir = checkpoints_dir_for("sft") / output_dirname;
      save_checkpoint(dir, step, model->state_dict(), optimizer.state_dict(), meta, ctx.rank, [] { barrier(); });
      print0f("Saved model checkpoint to {}", dir.string());
      break;
    }

    // One optimization step: grad_accum micro-batches, then the schedules and the update.
    auto t0 = std::chrono::steady_clock::now();
    const double progress_before = progress;
    double train_loss = 0;
    bool any_backward = false;
    for (int64_t micro = 0; micro < grad_accum_steps; micro++) {
      // A batch with every target masked (all padding) has no mean loss: skip it instead of backpropagating NaN.
      int64_t num_valid = (batch.targets >= 0).sum().item<int64_t>();
      if (num_valid > 0) {
        auto loss = model->forward(batch.inputs.to(torch::kInt64), batch.targets);
        train_loss = loss.item<double>();
        (loss / double(grad_accum_steps)).backward();
        any_backward = true;
      }
      batch = train_loader.next();
      progress = std::max(progress, batch.approx_progress);
    }
    double lrm = sft_lr_multiplier(progress, o.warmup_ratio, o.warmdown_ratio, o.final_lr_frac);
    double momentum = sft_muon_momentum(step);
    for (auto& g : optimizer.param_groups()) {
      g.lr = g.initial_lr * lrm;
      if (g.kind == GroupKind::muon) g.momentum = momentum;
    }
    any_backward = all_reduce(any_backward ? 1.0 : 0.0, Reduce::max) > 0;
    if (any_backward) zero_missing_grads(model->parameters());  // a rank that skipped every batch adds zeros
    if (any_backward)
      with_collectives("the optimizer step",
                       [&] { optimizer.step(); });  // no gradient at all: nothing to update (Muon needs every gradient)
    optimizer.zero_grad();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    step++;
    const double ema_beta = 0.9;
    smooth_train_loss = ema_beta * smooth_train_loss + (1 - ema_beta) * train_loss;
    double debiased = smooth_train_loss / (1 - std::pow(ema_beta, double(step + 1)));
    double pct = 100.0 * progress;
    int64_t tok_per_sec = int64_t(double(o.total_batch_size) / dt);
    double flops_per_sec = double(num_flops_per_token) * double(o.total_batch_size) / dt;
    double mfu = std::isfinite(peak_flops) ? 100.0 * flops_per_sec / (peak_flops * ctx.world_size) : 0.0;
    if (step > 10) {
      if (timed_from_progress < 0) timed_from_progress = progress_before;
      total_training_time += dt;
    }
    // An addition to nanochat's line: the time left, from the pace since step 10 (progress is 0..1 of the run).
    std::string eta;
    if (step > 10 && progress > timed_from_progress)
      eta =
          fmt::format(" | eta: {:.1f}m", total_training_time / (progress - timed_from_progress) * (1 - progress) / 60);
    print0f(
        "step {:05d} ({:.2f}%) | loss: {:.6f} | lrm: {:.2f} | dt: {:.2f}ms | tok/sec: {} | mfu: {:.2f} | epoch: {} | "
        "total time: {:.2f}m{}",
        step, pct, debiased, lrm, dt * 1000, with_thousands(tok_per_sec), mfu, batch.epoch, total_training_time / 60,
        eta);
    if (step % 10 == 0 || step == 1)
      logger.log(step, {{"train/loss", debiased},
                        {"train/lrm", lrm},
                        {"train/dt", dt},
                        {"train/tok_per_sec", double(tok_per_sec)},
                        {"train/mfu", mfu},
                        {"train/epoch", double(batch.epoch)}});
  }

  print0f("Peak memory usage: {:.2f}MiB", peak_memory_bytes(ctx.device) / 1024.0 / 1024.0);
  print0f("Total training time: {:.2f}m", total_training_time / 60);
  print0f("Minimum validation bpb: {:.4f}", min_val_bpb);
  ReportItem stats;
  stats["Number of iterations"] = step;
  stats["DDP world size"] = ctx.world_size;
  ReportItem best;
  best["Minimum validation bpb"] = min_val_bpb;
  get_report().log("SFT", {user_config, stats, best});
  logger.finish();
  compute_cleanup();
  return 0;
}
