// chat_web: serve a nanochat model over HTTP with a chat UI (scripts/chat_web.py), nanochat's API and an
// OpenAI-compatible one.
//   nanochat chat_web                          the latest SFT model on http://127.0.0.1:8000
//   nanochat chat_web -i rl -n 8               8 replicas, one per GPU
//   nanochat chat_web --num-workers 2 --device-type cpu --host 0.0.0.0
//   nanochat chat_web --max-batch 16           each worker decodes up to 16 conversations together (default 8)
//   nanochat chat_web --prefix-cache-mb 0      no prefix cache: every request prefills its whole conversation
// The HTTP side (validation, queue, streaming, UI) is nanochat/chat_server; this file loads the model replicas and
// adapts the inference engine to the server's ChatModel interface.
#include <cstdio>
#include <memory>
#include <mutex>

#include "nanochat/batch_engine.h"
#include "nanochat/serve/chat_server.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/engine.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/load_model.h"
#include "nanochat/cpu/threads.h"

using namespace nanochat;

namespace {

// One model replica: a loaded checkpoint plus an Engine over it, or a BatchEngine that decodes up to max_batch
// conversations together (the server then calls generate from that many threads at once) and keeps the prefix
// cache. The plain Engine (nanochat's own path) serves only --max-batch 1 --prefix-cache-mb 0.
class EngineChatModel : public ChatModel {
 public:
  EngineChatModel(LoadedModel lm, torch::Device device, int max_batch, int prefix_cache_mb)
      : lm_(std::move(lm)), engine_(lm_.model, lm_.tokenizer), device_(device.str()) {
    if (max_batch > 1 || prefix_cache_mb > 0) {
      batcher_ = std::make_unique<BatchEngine>(lm_.model, lm_.tokenizer, max_batch, BatchEngine::kPrefillChunk,
                                               int64_t(prefix_cache_mb) << 20);
      std::printf(
          "%s: decoding up to %d conversations together, KV cache %.0f MiB (--max-batch to change), prefix cache up "
          "to %d MiB (--prefix-cache-mb)\n",
          device_.c_str(), max_batch, double(batcher_->kv_cache_bytes()) / (1 << 20), prefix_cache_mb);
    }
  }

  std::vector<int> encode(std::string_view text) const override {
    auto ids = lm_.tokenizer.encode_ordinary(text);
    return {ids.begin(), ids.end()};
  }
  std::string decode(std::span<const int> ids) const override {
    return lm_.tokenizer.decode_bytes(std::vector<int32_t>(ids.begin(), ids.end()));
  }
  int special_id(std::string_view name) const override { return lm_.tokenizer.encode_special(name); }
  int sequence_len() const override { return int(lm_.model->config.sequence_len); }
  std::string device() const override { return device_; }
  int max_batch() const override { return batcher_ ? batcher_->max_batch() : 1; }
  PrefixCacheStats prefix_cache_stats() const override {
    return batcher_ ? batcher_->prefix_cache_stats() : PrefixCacheStats{};
  }

  void generate(const std::vector<int>& prompt, const SamplingParams& params, const TokenCallback& on_token) override {
    std::vector<int32_t> ids(prompt.begin(), prompt.end());
    // The engine's record of a token's log-probabilities, as the server's (ids as int).
    auto pass = [&](int32_t token, const TokenLogprobs* lp) {
      if (!lp) return on_token(token, nullptr);
      TokenLogprob out{lp->logprob, {lp->top.begin(), lp->top.end()}};
      return on_token(token, &out);
    };
    if (batcher_)
      return batcher_->generate(ids, params.max_tokens, params.temperature, params.top_k, params.seed,
                                params.top_logprobs, pass);
    engine_.generate(ids, 1, params.max_tokens, params.temperature, params.top_k, params.seed, params.top_logprobs,
                     [&](const std::vector<int32_t>& col, const std::vector<int32_t>&,
                         const std::vector<TokenLogprobs>* lps) { return pass(col[0], lps ? &(*lps)[0] : nullptr); });
  }

 private:
  LoadedModel lm_;
  Engine engine_;
  std::string device_;
  std::unique_ptr<BatchEngine> batcher_;  // last: its decode thread stops before the model goes
};

}  // namespace

int chat_web_main(int argc, char** argv) {
  block_shutdown_signals();  // before any thread exists, so that only the server's signal thread takes them
  ChatServerOptions opt;
  Flags app{"Serve the model with a web chat UI and an OpenAI-compatible API", "nanochat chat_web"};
  add_chat_web_flags(app, opt);
  std::string dtype = "float32";
  app.add_option("--dtype", dtype, "weights for decoding: float32 (as loaded), bfloat16 or int8 (CPU)")
      ->check(CLI::IsMember(kWeightDtypes));
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_decode_omp_wait(argc, argv);
  const int threads = configure_cpu_threads();
  ComputeContext ctx = compute_init(opt.device_type);
  if (opt.num_gpus > 1 && ctx.device.is_cuda() && opt.num_gpus > int(torch::cuda::device_count()))
    fail("--num-gpus={} but only {} CUDA devices are visible", opt.num_gpus, torch::cuda::device_count());
  if (!ctx.device.is_cuda()) {
    // Several CPU replicas share the cores: give each an equal slice so they do not oversubscribe.
    torch::set_num_threads(std::max(1, threads / std::max(1, opt.num_gpus)));
  }
  return run_chat_server(opt, [&](int i) -> std::unique_ptr<ChatModel> {
    torch::Device device = ctx.device.is_cuda() ? torch::Device(torch::kCUDA, i) : torch::Device(torch::kCPU);
    LoadedModel lm = load_model(opt.source, device, "eval", opt.model_tag, opt.step);
    pack_weights(*lm.model, dtype);
    return std::make_unique<EngineChatModel>(std::move(lm), device, opt.max_batch, opt.prefix_cache_mb);
  });
}
