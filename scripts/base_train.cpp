// base_train: pretrain a base model (nanochat's scripts/base_train.py).
//
//   nanochat base_train --depth=12                                   # auto batch size, LRs, weight decay, horizon
//   nanochat base_train --depth=4 --max-seq-len=512 --device-batch-size=1 --eval-tokens=512 \
//       --core-metric-every=-1 --total-batch-size=512 --num-iterations=20     # a CPU-sized run
//   nanochat base_train --depth=12 --resume-from-step=1000 --num-iterations=2000
//
// Given --depth, the model shape and the training plan come from nanochat/scaling.h (scaling laws anchored at d12):
// tokens = ratio × scaling params, batch B ∝ D^0.383 (rounded to a power of 2), LRs × √(B/2^19), weight decay
// by the T_epoch rule. The loop runs steps 0..N (step N only evaluates and saves): val bpb every --eval-every
// steps on a fresh val loader, greedy samples every --sample-every, checkpoints (model, optimizer per rank, meta)
// every --save-every and at the end; --resume-from-step continues from a checkpoint, data loader position and loop
// state included. Logs: the console step line, metrics through nanochat/logger.h, report section
// "Base model training".
//
// Several processes: `nanochat launch --nproc-per-node N -- base_train ...` (or torchrun --no-python). Each rank
// reads every N-th row group, evaluations sum across ranks, rank 0 alone logs, samples and writes the model, meta
// and report; every rank writes its optimizer file, so a checkpoint resumes only with the same number of ranks.
//
// Not covered (yet): fp16 (it needs a GradScaler), FP8's rowwise recipe, CUDA graphs.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "nanochat/checkpoint_manager.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/core_eval.h"
#include "nanochat/dataloader.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/load_model.h"
#include "nanochat/logger.h"
#include "nanochat/loss_eval.h"
#include "nanochat/optim.h"
#include "nanochat/report.h"
#include "nanochat/fp8.h"
#include "nanochat/scaling.h"
#include "nanochat/schedules.h"
#include "nanochat/cpu/threads.h"
#include "scripts/base_common.h"

using namespace nanochat;

namespace {

struct Options {
  std::string run = "dummy", device_type, logger = "auto";
  bool fp8 = false, grad_checkpoint = false;
  std::string fp8_recipe = "tensorwise";
  int64_t depth = 20, aspect_ratio = 64, head_dim = 128, max_seq_len = 2048;
  std::string window_pattern = "SSSL";
  int64_t num_iterations = -1;
  double target_flops = -1.0, target_param_data_ratio = 10.5;
  int64_t device_batch_size = 32, total_batch_size = -1;
  double embedding_lr = 0.3, unembedding_lr = 0.008, weight_decay = 0.28, matrix_lr = 0.02, scalar_lr = 0.5;
  int64_t warmup_steps = 40;
  double warmdown_ratio = 0.65, final_lr_frac = 0.05;
  int64_t resume_from_step = -1, eval_every = 250, eval_tokens = 80 * 524288, core_metric_every = 2000,
          core_metric_max_per_task = 500, sample_every = 2000, save_every = -1;
  std::string model_tag;
  bool overwrite = false;
};

double json_number_or(const Json& j, const char* key, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail("checkpoint meta: {} is not a number", key);
  return j[key].get<double>();
}

}  // namespace

int base_train_main(int argc, char** argv) {
  Options o;
  Flags app{"Pretrain a base model", "nanochat base_train"};
  app.add_option("--run", o.run, "run name for the experiment logger ('dummy' disables the tracker)");
  app.add_option("--device-type", o.device_type, "cuda|cpu (empty = autodetect)");
  app.add_flag("--fp8", o.fp8, "enable FP8 training (CUDA, a GPU with FP8 matmuls: sm89+)");
  app.add_option("--fp8-recipe", o.fp8_recipe, "FP8 scaling recipe (only tensorwise is implemented)")
      ->check(CLI::IsMember({"rowwise", "tensorwise"}));
  app.add_option("--depth", o.depth, "depth of the Transformer model");
  app.add_option("--aspect-ratio", o.aspect_ratio, "model_dim = depth * aspect_ratio");
  app.add_option("--head-dim", o.head_dim, "target head dimension for attention");
  app.add_option("--max-seq-len", o.max_seq_len, "max context length");
  app.add_option("--window-pattern", o.window_pattern,
                 "sliding window pattern tiled across layers: L=full, S=half context");
  app.add_option("--num-iterations", o.num_iterations, "explicit number of optimization steps (-1 = disable)");
  app.add_option("--target-flops", o.target_flops, "calculate num_iterations to reach target_flops (-1 = disable)");
  app.add_option("--target-param-data-ratio", o.target_param_data_ratio,
                 "calculate num_iterations to maintain data:param ratio (Chinchilla=20, -1 = disable)");
  app.add_option("--device-batch-size", o.device_batch_size, "per-device batch size (rows per micro-batch)");
  app.add_option("--total-batch-size", o.total_batch_size, "total batch size in tokens (-1 = auto-compute optimal)");
  app.add_option("--embedding-lr", o.embedding_lr, "learning rate for embedding parameters (Adam)");
  app.add_option("--unembedding-lr", o.unembedding_lr, "learning rate for unembedding parameters (Adam)");
  app.add_option("--weight-decay", o.weight_decay, "cautious weight decay for the Muon optimizer (for weights)");
  app.add_option("--matrix-lr", o.matrix_lr, "learning rate for matrix parameters (Muon)");
  app.add_option("--scalar-lr", o.scalar_lr, "learning rate for scalars (resid_lambdas, x0_lambdas)");
  app.add_option("--warmup-steps", o.warmup_steps, "number of steps for LR warmup");
  app.add_option("--warmdown-ratio", o.warmdown_ratio, "ratio of iterations for LR warmdown");
  app.add_option("--final-lr-frac", o.final_lr_frac, "final LR as fraction of initial LR");
  app.add_option("--resume-from-step", o.resume_from_step, "resume training from this step (-1 = disable)");
  app.add_option("--eval-every", o.eval_every, "evaluate val bpb every N steps (-1 = disable)");
  app.add_option("--eval-tokens", o.eval_tokens, "number of tokens to evaluate val loss on");
  app.add_option("--core-metric-every", o.core_metric_every, "evaluate CORE metric every N steps (-1 = disable)");
  app.add_option("--core-metric-max-per-task", o.core_metric_max_per_task, "examples per task for CORE metric");
  app.add_option("--sample-every", o.sample_every, "sample from model every N steps (-1 = disable)");
  app.add_option("--save-every", o.save_every, "save checkpoints every N steps (-1 = only at end)");
  app.add_option("--model-tag", o.model_tag, "override model tag for checkpoint directory name (default d<depth>)");
  app.add_option("--logger", o.logger, "metrics backend: auto|tensorboard|jsonl|none (see nanochat/logger.h)");
  app.add_flag("--grad-checkpoint", o.grad_checkpoint,
               "recompute each block in backward instead of keeping its activations (less memory, ~1/3 more compute)");
  app.add_flag("--overwrite", o.overwrite, "start fresh over the checkpoints of an earlier run in the same directory");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_passive_omp_wait(argc, argv);
  // Python's vars(args): every flag by its dest name (--logger, --grad-checkpoint and --overwrite are ours and
  // come last); --model-tag unset is None.
  Json user_config = app.values_json();
  if (o.model_tag.empty()) user_config["model_tag"] = nullptr;

  // A fresh run into a directory that holds another run's checkpoints would mix the two (sample picks whichever
  // step is last; a step of the same number is overwritten by a different model): refuse, unless told.
  const std::string tag = o.model_tag.empty() ? fmt::format("d{}", o.depth) : o.model_tag;
  const auto checkpoint_dir = get_base_dir() / "base_checkpoints" / tag;
  const bool resuming = o.resume_from_step != -1;
  const std::vector<int64_t> earlier_steps = committed_steps(checkpoint_dir);
  if (!resuming && !earlier_steps.empty() && !o.overwrite)
    fail(
        "{} already holds the checkpoints of another run (steps {}..{}); continue it with --resume-from-step, "
        "train under another --model-tag, or pass --overwrite to replace it",
        checkpoint_dir.string(), earlier_steps.front(), earlier_steps.back());

  // --- compute init ---------------------------------------------------------------------------------------------
  print_banner();
  int threads = configure_cpu_threads();
  ComputeContext ctx = compute_init(o.device_type);
  const bool cuda = ctx.device.is_cuda();
  const bool master = ctx.rank == 0;
  double peak_flops = std::numeric_limits<double>::infinity();  // MFU is not meaningful on CPU
  if (cuda) {
    std::string name = cuda_device_name(ctx.local_rank);
    peak_flops = get_peak_flops(name);
    print0f("GPU: {} | Peak FLOPS (BF16): {:.2e}", name, peak_flops);
  } else {
    print0f("CPU threads: {}", threads);
  }
  peak_flops = peak_flops_override(peak_flops);
  print0f("COMPUTE_DTYPE: {} ({})", dtype_name(compute_dtype()), compute_dtype_reason());
  if (compute_dtype() == torch::kHalf)
    fail("NANOCHAT_DTYPE=float16 needs a gradient scaler, which base_train does not have; use bfloat16 or float32");
  if (o.fp8 && !cuda) print0("Warning: FP8 training requires CUDA, ignoring --fp8 flag");
  if (o.fp8 && cuda && (o.device_batch_size * o.max_seq_len) % 16 != 0)
    fail("--fp8 needs --device-batch-size x --max-seq-len to be a multiple of 16 (FP8 matmuls), got {} x {}",
         o.device_batch_size, o.max_seq_len);
  if (o.fp8 && cuda && o.fp8_recipe != "tensorwise")
    fail("--fp8-recipe {}: only the tensorwise recipe is implemented (rowwise needs torchao); use --fp8-recipe "
         "tensorwise", o.fp8_recipe);
  Logger logger =
      master ? Logger("nanochat", o.run, o.logger, nlohmann::json(user_config), o.resume_from_step != -1) : Logger();

  // --- tokenizer and model --------------------------------------------------------------------------------------
  Tokenizer tokenizer = load_tokenizer();
  torch::Tensor token_bytes = load_token_bytes(ctx.device, tokenizer.get_vocab_size());
  const int64_t vocab_size = tokenizer.get_vocab_size();
  print0f("Vocab size: {}", with_thousands(vocab_size));

  ScalingArgs sa;
  sa.depth = o.depth;
  sa.aspect_ratio = o.aspect_ratio;
  sa.head_dim = o.head_dim;
  sa.max_seq_len = o.max_seq_len;
  sa.window_pattern = o.window_pattern;
  sa.vocab_size = vocab_size;
  sa.num_iterations = o.num_iterations;
  sa.target_flops = o.target_flops;
  sa.target_param_data_ratio = o.target_param_data_ratio;
  sa.total_batch_size = o.total_batch_size;
  sa.weight_decay = o.weight_decay;
  if (o.num_iterations <= 0 && o.target_flops <= 0 && o.target_param_data_ratio <= 0)
    fail("no training horizon: set --num-iterations, --target-flops or --target-param-data-ratio to a positive value");
  const ScalingPlan plan = plan_training(sa);
  const GPTConfig& config = plan.model_config;
  print0f("Model config:\n{}", json_dumps_python(config_to_json(config), 2));
  // The batch arithmetic and a lower bound of the memory one training step holds, before anything is allocated
  // (a typo'd --device-batch-size would otherwise build batches for minutes, then die in the allocator): fp32
  // parameters, their gradients and one optimizer moment each, plus per token and layer at least 8·n_embd
  // activations saved for backward.
  if (o.device_batch_size > std::numeric_limits<int>::max() || o.max_seq_len > std::numeric_limits<int>::max())
    fail("--device-batch-size={} / --max-seq-len={} are beyond what one batch can hold", o.device_batch_size,
         o.max_seq_len);
  grad_accum_steps(plan.total_batch_size, o.device_batch_size, o.max_seq_len, ctx.world_size);
  {
    // With --grad-checkpoint a layer keeps only its input (one n_embd per token).
    const double saved_per_layer = o.grad_checkpoint ? 1.0 : 8.0;
    const double step_bytes = 12.0 * double(plan.scaling_params) +
                              double(o.device_batch_size) * double(o.max_seq_len) * double(config.n_layer) *
                                  saved_per_layer * double(config.n_embd) * double(c10::elementSize(compute_dtype()));
    const double memory = device_memory_bytes(ctx.device);
    if (step_bytes > memory)
      fail(
          "depth {} with --device-batch-size={} x --max-seq-len={} needs at least {:.1f} GiB per training step; "
          "{} has {:.1f} GiB (lower --device-batch-size; gradient accumulation keeps --total-batch-size)",
          o.depth, o.device_batch_size, o.max_seq_len, step_bytes / (1 << 30), ctx.device.str(), memory / (1 << 30));
  }
  GPT model(config, ctx.device);
  model->init_weights();

  if (!resuming && !earlier_steps.empty() && master) {
    print0f("Removing the {} checkpoints of the earlier run in {} (--overwrite)", earlier_steps.size(),
            checkpoint_dir.string());
    remove_checkpoints(checkpoint_dir);
  }
  Json resume_meta;
  std::optional<c10::IValue> optimizer_data;
  if (resuming) {
    print0f("Resuming optimization from step {}", o.resume_from_step);
    if (!std::filesystem::exists(checkpoint_dir / fmt::format("meta_{:06d}.json", o.resume_from_step)))
      fail("cannot resume: no checkpoint at step {} in {} (run base_train with --save-every to write one)",
           o.resume_from_step, checkpoint_dir.string());
    check_checkpoint_world_size(checkpoint_dir, o.resume_from_step, ctx.world_size, ctx.rank);
    ModelCheckpoint ck = load_model_state_from_dir(checkpoint_dir, o.resume_from_step, ctx.device);
    model->load_state_dict(ck.state, /*strict=*/true);
    resume_meta = std::move(ck.meta);
    optimizer_data = load_optimizer_state_from_dir(checkpoint_dir, o.resume_from_step, ctx.rank, ctx.device);
    if (!optimizer_data)
      fail("cannot resume from step {}: optimizer state optim_{:06d}_rank{}.pt is missing in {}", o.resume_from_step,
           o.resume_from_step, ctx.rank, checkpoint_dir.string());
  }

  model->grad_checkpoint = o.grad_checkpoint;
  if (o.grad_checkpoint) print0("Gradient checkpointing: each block is recomputed in backward");
  // FP8 after the weights are loaded, as nanochat converts before compiling. A GPU without FP8 matmuls fails here,
  // on a tiny product, rather than in the first step.
  if (o.fp8 && cuda) {
    try {
      auto w = torch::randn({16, 16}, torch::TensorOptions().device(ctx.device));
      fp8_linear(torch::randn({16, 16}, w.options().dtype(compute_dtype())), w);
    } catch (const c10::Error& e) {
      std::string why = e.what_without_backtrace();
      fail("--fp8: this GPU has no FP8 matmuls ({}); FP8 needs sm89 or newer (L4, L40S, H100, ...): drop --fp8",
           why.substr(0, why.find('\n')));
    }
    const Fp8Conversion n = convert_to_float8_training(*model);
    print0f("✓ FP8 training enabled ({} scaling) - converted {}/{} linear layers, skipped {} (too small, or the "
            "lm_head of the fused loss)",
            o.fp8_recipe, n.converted, n.linear_layers, n.linear_layers - n.converted);
  }

  // --- scaling laws ---------------------------------------------------------------------------------------------
  const ParamCounts pc = model->num_scaling_params();
  print0("Parameter counts:");
  const std::initializer_list<std::pair<const char*, int64_t>> counts = {
      {"wte", pc.wte},         {"value_embeds", pc.value_embeds},
      {"lm_head", pc.lm_head}, {"transformer_matrices", pc.transformer_matrices},
      {"scalars", pc.scalars}, {"total", pc.total}};
  for (const auto& [key, value] : counts) print0f("{:<24}: {}", key, with_thousands(value));
  const int64_t num_params = pc.total;
  const int64_t flops_per_token = model->estimate_flops();
  print0f("Estimated FLOPs per token: {:e}", double(flops_per_token));
  const int64_t total_batch_size = plan.total_batch_size;
  if (plan.auto_batch_size) print0f("Auto-computed optimal batch size: {} tokens", with_thousands(total_batch_size));
  const double lr_scale = plan.batch_lr_scale;
  if (lr_scale != 1.0)
    print0f("Scaling LRs by {:.4f} for batch size {} (reference: {})", lr_scale, with_thousands(total_batch_size),
            with_thousands(ScalingPlan::kBRef));
  const double wd = plan.weight_decay_scaled;
  if (wd != o.weight_decay)
    print0f("Scaling weight decay from {:.6f} to {:.6f} for depth {}", o.weight_decay, wd, o.depth);

  MuonAdamW optimizer = setup_optimizer(model->state_dict(), config.n_embd, o.unembedding_lr * lr_scale,
                                        o.embedding_lr * lr_scale, o.matrix_lr * lr_scale, wd, o.scalar_lr * lr_scale,
                                        process_group());  // several ranks: ZeRO-2, step() averages the gradients
  if (optimizer_data) {
    optimizer.load_state_dict(*optimizer_data);
    optimizer_data.reset();
  }

  // --- data -----------------------------------------------------------------------------------------------------
  BatchEncoder encode = [&tokenizer](const std::vector<std::string>& texts) {
    std::vector<std::vector<int>> out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(tokenizer.encode_ordinary(t));
    return out;
  };
  const int bos = tokenizer.get_bos_token_id();
  std::optional<DataState> resume_state;
  if (resuming) {
    const Json& ds = resume_meta.at("dataloader_state_dict");
    resume_state =
        DataState{ds.at("pq_idx").get<int64_t>(), ds.at("rg_idx").is_null() ? -1 : ds.at("rg_idx").get<int64_t>(),
                  ds.contains("epoch") ? ds.at("epoch").get<int64_t>() : 1};
  }
  const int B = int(o.device_batch_size), T = int(o.max_seq_len);
  DataLoader train_loader(encode, bos, B, T, "train", ctx.device, ctx.rank, ctx.world_size, resume_state);
  PretrainBatch batch = train_loader.next();  // kick off the first batch

  // --- horizon --------------------------------------------------------------------------------------------------
  const int64_t num_iterations = plan.num_iterations;
  if (plan.horizon_source == "num_iterations")
    print0f("Using user-provided number of iterations: {}", with_thousands(num_iterations));
  else if (plan.horizon_source == "target_flops")
    print0f("Calculated number of iterations from target FLOPs: {}", with_thousands(num_iterations));
  else
    print0f("Calculated number of iterations from target data:param ratio: {}", with_thousands(num_iterations));
  const int64_t total_tokens = total_batch_size * num_iterations;
  const double tokens_params_ratio = double(total_batch_size) * double(num_iterations) / double(plan.scaling_params);
  print0f("Total number of training tokens: {}", with_thousands(total_tokens));
  print0f("Tokens : Scaling params ratio: {:.2f}", tokens_params_ratio);
  print0f("Total training FLOPs estimate: {:e}", double(flops_per_token) * double(total_tokens));
  if (num_iterations < 1) fail("the training horizon is {} steps; it must be at least 1", num_iterations);

  // --- loop state -----------------------------------------------------------------------------------------------
  int64_t step = 0;
  std::optional<double> val_bpb;
  double min_val_bpb = std::numeric_limits<double>::infinity(), smooth_train_loss = 0, total_training_time = 0;
  if (resuming) {
    step = resume_meta.at("step").get<int64_t>();
    const Json& ls = resume_meta.at("loop_state");
    if (resume_meta.contains("val_bpb") && !resume_meta["val_bpb"].is_null())
      val_bpb = resume_meta["val_bpb"].get<double>();
    min_val_bpb = json_number_or(ls, "min_val_bpb", min_val_bpb);
    smooth_train_loss = json_number_or(ls, "smooth_train_loss", 0);
    total_training_time = json_number_or(ls, "total_training_time", 0);
    if (step > num_iterations)
      fail("cannot resume: checkpoint step {} is past the training horizon of {} steps", step, num_iterations);
  }
  const int64_t tokens_per_fwdbwd = o.device_batch_size * o.max_seq_len;
  const int64_t grad_accum = grad_accum_steps(total_batch_size, o.device_batch_size, o.max_seq_len, ctx.world_size);
  print0f("Tokens / micro-batch / rank: {} x {} = {}", o.device_batch_size, o.max_seq_len,
          with_thousands(tokens_per_fwdbwd));
  print0f("Tokens / micro-batch: {}", with_thousands(tokens_per_fwdbwd * ctx.world_size));
  print0f("Total batch size {} => gradient accumulation steps: {}", with_thousands(total_batch_size), grad_accum);

  auto synchronize = [&] {
    if (cuda) torch::cuda::synchronize();
  };
  DataState data_state = batch.state;
  double mfu = 0;
  std::optional<double> core_metric;
  const int64_t eval_steps = o.eval_tokens / (o.device_batch_size * o.max_seq_len * ctx.world_size);

  while (true) {
    const bool last_step = step == num_iterations;
    const double flops_so_far = double(flops_per_token) * double(total_batch_size) * double(step);

    if (o.eval_every > 0 && (last_step || step % o.eval_every == 0)) {
      Fp8Disabled in_bf16(*model);  // evaluation in the compute dtype, as nanochat's disable_fp8
      model->eval();
      DataLoader val_loader(encode, bos, B, T, "val", ctx.device, ctx.rank, ctx.world_size);
      double bpb = evaluate_bpb(
          model,
          [&] {
            auto b = val_loader.next();
            return std::pair{b.inputs, b.targets};
          },
          eval_steps, token_bytes, [](torch::Tensor& t) { all_reduce(t, Reduce::sum); });
      val_bpb = bpb;
      print0f("Step {:05d} | Validation bpb: {:.6f}", step, bpb);
      if (bpb < min_val_bpb) min_val_bpb = bpb;
      logger.log(
          step,
          {{"total_training_flops", flops_so_far}, {"total_training_time", total_training_time}, {"val/bpb", bpb}});
      model->train();
    }

    if (o.core_metric_every > 0 && (last_step || (step > 0 && step % o.core_metric_every == 0))) {
      Fp8Disabled in_bf16(*model);
      model->eval();
      CoreResult core = evaluate_core(model, tokenizer, ensure_eval_bundle(), o.core_metric_max_per_task, ctx.rank,
                                      ctx.world_size, [](std::vector<float>& v) { all_reduce(v, Reduce::sum); });
      core_metric = core.core_metric;
      print0f("Step {:05d} | CORE metric: {:.4f}", step, core.core_metric);
      logger.log(step, {{"total_training_flops", flops_so_far}, {"core_metric", core.core_metric}});
      model->train();
    }

    if (o.sample_every > 0 && master && (last_step || (step > 0 && step % o.sample_every == 0))) {
      Fp8Disabled in_bf16(*model);
      model->eval();
      Engine engine(model, tokenizer);
      for (const char* prompt : kSamplePrompts) {
        auto tokens = tokenizer.encode(prompt, "<|bos|>");
        auto [seqs, masks] = engine.generate_batch(tokens, 1, 16, 0.0, 0, 42);
        print0(tokenizer.decode(seqs[0]));
      }
      model->train();
    }

    if (last_step || (step > 0 && step != o.resume_from_step && o.save_every > 0 && step % o.save_every == 0)) {
      Json meta;
      meta["step"] = step;
      meta["val_bpb"] = val_bpb ? Json(*val_bpb) : Json(nullptr);
      meta["model_config"] = config_to_json(config);
      meta["user_config"] = user_config;
      meta["device_batch_size"] = o.device_batch_size;
      meta["max_seq_len"] = o.max_seq_len;
      meta["total_batch_size"] = total_batch_size;
      meta["dataloader_state_dict"] = {
          {"pq_idx", data_state.pq_idx}, {"rg_idx", data_state.rg_idx}, {"epoch", data_state.epoch}};
      meta["loop_state"] = {{"min_val_bpb", min_val_bpb},
                            {"smooth_train_loss", smooth_train_loss},
                            {"total_training_time", total_training_time}};
      NamedTensors state;
      for (auto& [name, t] : model->state_dict()) state.emplace_back(name, t.detach());
      save_checkpoint(checkpoint_dir, step, state, optimizer.state_dict(), meta, ctx.rank, [] { barrier(); });
    }

    if (last_step) break;

    // --- one optimizer step ---
    synchronize();
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor train_loss;
    for (int64_t micro = 0; micro < grad_accum; ++micro) {
      torch::Tensor loss = model->forward(batch.inputs, batch.targets);
      train_loss = loss.detach();
      (loss / double(grad_accum)).backward();
      batch = train_loader.next();  // the loader prepares it in the background meanwhile
    }
    data_state = batch.state;
    const double lrm = base_lr_multiplier(step, num_iterations, o.warmup_steps, o.warmdown_ratio, o.final_lr_frac);
    const double momentum = base_muon_momentum(step, num_iterations, o.warmdown_ratio);
    const double muon_wd = base_muon_weight_decay(step, num_iterations, wd);
    for (auto& g : optimizer.param_groups()) {
      g.lr = g.initial_lr * lrm;
      if (g.kind == GroupKind::muon) {
        g.momentum = momentum;
        g.weight_decay = muon_wd;
      }
    }
    with_collectives("the optimizer step", [&] { optimizer.step(); });
    optimizer.zero_grad();
    const double train_loss_f = train_loss.item<double>();
    if (!std::isfinite(train_loss_f))  // before the parameters it produced can be saved
      fail(
          "step {}: the training loss is {}; stopping without saving (lower the learning rates, or resume from an "
          "earlier checkpoint with --resume-from-step)",
          step, train_loss_f);
    synchronize();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // --- logging ---
    const double ema_beta = 0.9;
    smooth_train_loss = ema_beta * smooth_train_loss + (1 - ema_beta) * train_loss_f;
    const double debiased = smooth_train_loss / (1 - std::pow(ema_beta, double(step + 1)));
    const double pct_done = 100.0 * double(step) / double(num_iterations);
    const int64_t tok_per_sec = int64_t(double(total_batch_size) / dt);
    const double flops_per_sec = double(flops_per_token) * double(total_batch_size) / dt;
    mfu = 100 * flops_per_sec / (peak_flops * ctx.world_size);
    if (step > 10) total_training_time += dt;
    std::string eta;
    if (step - 10 > 0) {
      double avg = total_training_time / double(step - 10);
      eta = fmt::format(" | eta: {:.1f}m", double(num_iterations - step) * avg / 60);
    }
    print0f(
        "step {:05d}/{:05d} ({:.2f}%) | loss: {:.6f} | lrm: {:.2f} | dt: {:.2f}ms | tok/sec: {} | bf16_mfu: {:.2f} | "
        "epoch: {} pq: {} rg: {} | total time: {:.2f}m{}",
        step, num_iterations, pct_done, debiased, lrm, dt * 1000, with_thousands(tok_per_sec), mfu, data_state.epoch,
        data_state.pq_idx, data_state.rg_idx, total_training_time / 60, eta);
    if (step % 100 == 0)
      logger.log(step, {{"total_training_flops", flops_so_far},
                        {"total_training_time", total_training_time},
                        {"train/loss", debiased},
                        {"train/lrm", lrm},
                        {"train/dt", dt},
                        {"train/tok_per_sec", double(tok_per_sec)},
                        {"train/mfu", mfu},
                        {"train/epoch", double(data_state.epoch)}});
    step++;
  }

  const double peak_mib = peak_memory_bytes(ctx.device) / 1024.0 / 1024.0;
  print0f("Peak memory usage: {:.2f}MiB", peak_mib);
  print0f("Total training time: {:.2f}m", total_training_time / 60);
  if (val_bpb) print0f("Minimum validation bpb: {:.6f}", min_val_bpb);

  get_report().log(
      "Base model training",
      {
          ReportItem(user_config),
          ReportItem{{"Number of parameters", num_params},
                     {"Number of FLOPs per token", fmt::format("{:e}", double(flops_per_token))},
                     {"Calculated number of iterations", num_iterations},
                     {"Number of training tokens", total_tokens},
                     {"Tokens : Scaling params ratio", tokens_params_ratio},
                     {"DDP world size", ctx.world_size},
                     {"warmup_steps", o.warmup_steps},
                     {"warmdown_ratio", o.warmdown_ratio},
                     {"final_lr_frac", o.final_lr_frac}},
          ReportItem{{"Minimum validation bpb", val_bpb ? ReportItem(min_val_bpb) : ReportItem(nullptr)},
                     {"Final validation bpb", val_bpb ? ReportItem(*val_bpb) : ReportItem(nullptr)},
                     {"CORE metric estimate", core_metric ? ReportItem(*core_metric) : ReportItem(nullptr)},
                     {"MFU %", fmt::format("{:.2f}%", mfu)},
                     {"Total training flops", fmt::format("{:e}", double(flops_per_token) * double(total_tokens))},
                     {"Total training time", fmt::format("{:.2f}m", total_training_time / 60)},
                     {"Peak memory usage", fmt::format("{:.2f}MiB", peak_mib)}},
      });
  logger.finish();
  compute_cleanup();
  return 0;
}
