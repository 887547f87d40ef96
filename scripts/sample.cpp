// sample: generate from a trained checkpoint with the Engine — a quick look at a model and the parity probe the
// tests use against Python nanochat.
//
//   nanochat sample -i base -p "The capital of France is"                    # greedy, 24 tokens
//   nanochat sample -i sft -g d12 -s 700 -p "Hi" --temperature 0.8 --top-k 50 --num-samples 3
//   nanochat sample -i base -p "Hello" --json --logits 16                     # {"ids": [...], "text": ...,
//   "last_logits": [...]}
//
// The prompt is encoded with <|bos|> prepended and continued as is (no chat template; use chat_cli for chat).
// Printed text is the decode of the whole sequence, prompt included, as nanochat's base_eval prints samples.
// --logits N prints the first N logits of the model's forward pass at the prompt's last position.
#include <limits>
#include <iostream>

#include <nlohmann/json.hpp>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/load_model.h"
#include "nanochat/cpu/threads.h"

using namespace nanochat;

int sample_main(int argc, char** argv) {
  std::string source = "base", model_tag, prompt, device_type, dtype = "float32";
  int64_t step = -1, top_k = 0, logits_n = 0;
  double temperature = 0.0;
  int max_tokens = 24, num_samples = 1;
  uint64_t seed = 42;
  bool json = false;
  Flags app{"Sample from a trained model", "nanochat sample"};
  app.add_option("-i,--source", source, "checkpoint source: base|sft|rl")->check(CLI::IsMember({"base", "sft", "rl"}));
  app.add_option("-g,--model-tag", model_tag, "model tag (default: the largest)");
  app.add_option("-s,--step", step, "checkpoint step (default: the last)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  app.add_option("-p,--prompt", prompt, "prompt text (encoded with <|bos|> prepended)");
  app.add_option("-t,--temperature", temperature, "sampling temperature (0 = greedy)");
  app.add_option("-k,--top-k", top_k, "top-k sampling (0 = all tokens)");
  app.add_option("-m,--max-tokens", max_tokens, "new tokens per sample");
  app.add_option("-n,--num-samples", num_samples, "number of samples");
  app.add_option("--seed", seed, "random seed for sampling");
  app.add_flag("--json", json, "print one JSON object per sample: {\"ids\", \"text\"}");
  app.add_option("--logits", logits_n, "also print the first N logits at the prompt's last position");
  app.add_option("--device-type", device_type, "cuda|cpu (empty = autodetect)");
  app.add_option("--dtype", dtype, "weights for decoding: float32 (as loaded), bfloat16 or int8 (CPU)")
      ->check(CLI::IsMember(kWeightDtypes));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_decode_omp_wait(argc, argv);
  if (max_tokens < 0) fail("--max-tokens={} must be >= 0", max_tokens);
  if (num_samples < 1) fail("--num-samples={} must be >= 1", num_samples);
  if (temperature < 0) fail("--temperature={} must be >= 0", temperature);
  if (top_k < 0) fail("--top-k={} must be >= 0", top_k);
  if (logits_n < 0) fail("--logits={} must be >= 0", logits_n);

  configure_cpu_threads();
  ComputeContext ctx = compute_init(device_type);
  LoadedModel lm = load_model(source, ctx.device, "eval", model_tag.empty() ? std::nullopt : std::optional(model_tag),
                              step >= 0 ? std::optional(step) : std::nullopt);
  pack_weights(*lm.model, dtype);
  std::vector<int32_t> ids = lm.tokenizer.encode(prompt, "<|bos|>");
  if (int64_t(ids.size()) + max_tokens > lm.model->config.sequence_len)
    fail("prompt ({} tokens) + --max-tokens={} exceeds the model's sequence length {}", ids.size(), max_tokens,
         lm.model->config.sequence_len);

  std::vector<double> last_logits;
  if (logits_n > 0) {
    torch::NoGradGuard no_grad;
    torch::Tensor idx =
        torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0).to(ctx.device);
    if (idx.size(1) < 2) fail("--logits needs a prompt of at least one token besides <|bos|>");
    torch::Tensor logits =
        lm.model->forward(idx).select(1, idx.size(1) - 1).squeeze(0).to(torch::kCPU, torch::kFloat64);
    int64_t n = std::min<int64_t>(logits_n, logits.size(0));
    for (int64_t i = 0; i < n; ++i) last_logits.push_back(logits[i].item<double>());
  }

  Engine engine(lm.model, lm.tokenizer);
  auto [seqs, masks] = engine.generate_batch(ids, num_samples, max_tokens, temperature, top_k, seed);
  for (const auto& seq : seqs) {
    std::string text = lm.tokenizer.decode(seq);
    if (json) {
      nlohmann::json out = {{"ids", seq}, {"text", text}};
      if (logits_n > 0) out["last_logits"] = last_logits;
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << text << "\n";
    }
  }
  if (!json && logits_n > 0) {
    std::cout << "last logits:";
    for (double v : last_logits) std::cout << fmt::format(" {:.8g}", v);
    std::cout << "\n";
  }
  std::cout.flush();
  compute_cleanup();
  return 0;
}
