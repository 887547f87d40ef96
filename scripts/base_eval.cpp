// base_eval: evaluate a base model (nanochat's scripts/base_eval.py): bits per byte on the train and
// val splits, the CORE metric, greedy samples of the seven prompts and eight unconditioned samples, and the report
// section "Base model evaluation".
//
//   nanochat base_eval --eval bpb,sample                        # largest base model, last step
//   nanochat base_eval --eval bpb --model-tag d12 --step 2000 --device-batch-size 16 --split-tokens 1048576
//
// CORE downloads nanochat's eval bundle into the base dir once and writes <base_dir>/base_eval/<model>.csv.
// Several processes (nanochat launch -- base_eval ...): CORE examples and bpb row groups are strided over ranks and
// the counts, nats and bytes summed, so CORE equals one process's exactly; rank 0 samples and writes.
// Not covered (yet): HuggingFace models (--hf-path).
#include <limits>
#include <set>
#include <sstream>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/core_eval.h"
#include "nanochat/dataloader.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/load_model.h"
#include "nanochat/loss_eval.h"
#include "nanochat/report.h"
#include "nanochat/cpu/threads.h"
#include "scripts/base_common.h"

using namespace nanochat;

int base_eval_main(int argc, char** argv) {
  std::string eval = "core,bpb,sample", hf_path, model_tag, device_type, dtype = "float32";
  int64_t step = -1, max_per_task = -1, device_batch_size = 32, split_tokens = 40 * 524288;
  Flags app{"Evaluate a base model: CORE, bits per byte, samples", "nanochat base_eval"};
  app.add_option("--eval", eval, "comma-separated evaluations: core, bpb, sample");
  app.add_option("--hf-path", hf_path, "evaluate a HuggingFace model instead (not supported in this program)");
  app.add_option("-g,--model-tag", model_tag, "base model tag (default: the largest)");
  app.add_option("-s,--step", step, "checkpoint step (default: the last)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  app.add_option("--max-per-task", max_per_task, "CORE examples per task (-1 = all)");
  app.add_option("--device-batch-size", device_batch_size, "rows per batch for bits per byte");
  app.add_option("--split-tokens", split_tokens, "tokens per split for bits per byte");
  app.add_option("--device-type", device_type, "cuda|cpu (empty = autodetect)");
  app.add_option("--dtype", dtype, "weights: float32 (as loaded), bfloat16 or int8 (CPU)")
      ->check(CLI::IsMember(kWeightDtypes));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_passive_omp_wait(argc, argv);

  std::set<std::string> modes;
  std::stringstream ss(eval);
  for (std::string m; std::getline(ss, m, ',');) {
    if (m != "core" && m != "bpb" && m != "sample")
      fail("--eval: '{}' is not an evaluation; choose from core, bpb, sample (comma-separated)", m);
    modes.insert(m);
  }
  if (modes.empty()) fail("--eval is empty; choose from core, bpb, sample (comma-separated)");
  if (!hf_path.empty())
    fail("--hf-path: evaluating HuggingFace models is not supported; evaluate a nanochat checkpoint with --model-tag");
  if (device_batch_size < 1) fail("--device-batch-size={} must be positive", device_batch_size);

  configure_cpu_threads();
  ComputeContext ctx = compute_init(device_type);
  LoadedModel lm = load_model("base", ctx.device, "eval", model_tag.empty() ? std::nullopt : std::optional(model_tag),
                              step >= 0 ? std::optional(step) : std::nullopt);
  pack_weights(*lm.model, dtype);
  GPT& model = lm.model;
  const Tokenizer& tokenizer = lm.tokenizer;
  const int64_t sequence_len = lm.meta["model_config"]["sequence_len"].get<int64_t>();
  const std::string model_name = fmt::format("base_model (step {})", lm.step);
  print0f("Evaluating model: {}", model_name);
  {
    std::string joined;
    for (const auto& m : modes) joined += (joined.empty() ? "" : ", ") + m;
    print0f("Eval modes: {}", joined);
  }

  std::vector<std::string> samples, unconditioned;
  if (modes.count("sample")) {
    print0("\n" + std::string(80, '=') + "\nModel Samples\n" + std::string(80, '='));
    if (ctx.rank == 0) {
      Engine engine(model, tokenizer);
      print0("\nConditioned samples:");
      for (const char* prompt : kSamplePrompts) {
        auto tokens = tokenizer.encode(prompt, "<|bos|>");
        auto [seqs, masks] = engine.generate_batch(tokens, 1, 16, 0.0, 0, 42);
        std::string text = tokenizer.decode(seqs[0]);
        print0(std::string(80, '-'));
        print0(text);
        samples.push_back(text);
      }
      print0("\nUnconditioned samples:");
      auto tokens = tokenizer.encode("", "<|bos|>");
      auto [seqs, masks] = engine.generate_batch(tokens, 8, 128, 1.0, 0, 42);
      for (const auto& s : seqs) {
        std::string text = tokenizer.decode(s);
        print0(std::string(80, '-'));
        print0(text);
        unconditioned.push_back(text);
      }
    }
  }

  std::optional<double> train_bpb, val_bpb;
  if (modes.count("bpb")) {
    print0("\n" + std::string(80, '=') + "\nBPB Evaluation\n" + std::string(80, '='));
    torch::Tensor token_bytes = load_token_bytes(ctx.device, tokenizer.get_vocab_size());
    const int64_t tokens_per_step = device_batch_size * sequence_len * ctx.world_size;
    if (split_tokens % tokens_per_step != 0) {
      split_tokens = split_tokens / tokens_per_step * tokens_per_step;
      print0f("Adjusted split_tokens to {} (must be divisible by {})", split_tokens, tokens_per_step);
    }
    const int64_t steps = split_tokens / tokens_per_step;
    BatchEncoder encode = [&tokenizer](const std::vector<std::string>& texts) {
      std::vector<std::vector<int>> out;
      out.reserve(texts.size());
      for (const auto& t : texts) out.push_back(tokenizer.encode_ordinary(t));
      return out;
    };
    for (const char* split : {"train", "val"}) {
      DataLoader loader(encode, tokenizer.get_bos_token_id(), int(device_batch_size), int(sequence_len), split,
                        ctx.device, ctx.rank, ctx.world_size);
      double bpb = evaluate_bpb(
          model,
          [&] {
            auto b = loader.next();
            return std::pair{b.inputs, b.targets};
          },
          steps, token_bytes, [](torch::Tensor& t) { all_reduce(t, Reduce::sum); });
      (std::string(split) == "train" ? train_bpb : val_bpb) = bpb;
      print0f("{} bpb: {:.6f}", split, bpb);
    }
  }

  std::optional<CoreResult> core;
  if (modes.count("core")) {
    print0("\n" + std::string(80, '=') + "\nCORE Evaluation\n" + std::string(80, '='));
    core = evaluate_core(model, tokenizer, ensure_eval_bundle(), max_per_task, ctx.rank, ctx.world_size,
                         [](std::vector<float>& v) { all_reduce(v, Reduce::sum); });
    if (ctx.rank == 0) {
      std::string csv = fmt::format("{:<35}, {:<10}, {:<10}\n", "Task", "Accuracy", "Centered");
      for (const auto& t : core->tasks)
        csv += fmt::format("{:<35}, {:<10.6f}, {:<10.6f}\n", t.label, t.accuracy, t.centered);
      csv += fmt::format("{:<35}, {:<10}, {:<10.6f}\n", "CORE", "", core->core_metric);
      auto path = get_base_dir() / "base_eval" / fmt::format("base_model_{:06d}.csv", lm.step);
      write_file_atomic(path, csv);
      print0f("\nResults written to: {}", path.string());
    }
    print0f("CORE metric: {:.4f}", core->core_metric);
  }

  ReportItem summary{{"model", model_name}};
  if (core) summary["CORE metric"] = core->core_metric;
  if (train_bpb) summary["train bpb"] = *train_bpb;
  if (val_bpb) summary["val bpb"] = *val_bpb;
  ReportItem sample_items = ReportItem::object(), uncond_items = ReportItem::object();
  for (size_t i = 0; i < samples.size(); ++i) sample_items[fmt::format("sample {}", i)] = samples[i];
  for (size_t i = 0; i < unconditioned.size(); ++i) uncond_items[fmt::format("unconditioned {}", i)] = unconditioned[i];
  ReportItem centered = ReportItem::object();
  if (core)
    for (const auto& t : core->tasks) centered[t.label] = t.centered;
  get_report().log("Base model evaluation", {summary, centered, sample_items, uncond_items});
  compute_cleanup();
  return 0;
}
