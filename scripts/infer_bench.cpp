// infer_bench: inference speed of the engine — time to first token (prefill), time per output token and
// tokens/s at several batch sizes, greedy decoding through the KV cache.
//   nanochat infer_bench -i sft                                  a checkpoint (latest SFT model)
//   nanochat infer_bench --depth 6 --head-dim 64                 a randomly initialized model, no checkpoint needed
//   nanochat infer_bench --depth 4 --batch-sizes 1,8,32 --prompt-len 64 --max-tokens 64 --json
//   nanochat infer_bench --depth 6 --prompt-len 1024 --max-tokens 64 --second-turn 32
//                                                                 a chat's next turn, with and without the prefix cache
// Each batch size runs --warmup untimed passes, then --repeats timed ones; the median is printed. --second-turn N
// instead times the first token of a conversation's second turn (the first turn's prompt and reply, then N new
// tokens) through the batch engine (batch_engine.h), once with its prefix cache and once without.
#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "nanochat/batch_engine.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/engine.h"
#include "nanochat/cli/flags.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/load_model.h"
#include "nanochat/cpu/threads.h"

using namespace nanochat;

namespace {

struct Timing {
  double ttft_ms = 0, tpot_ms = 0, tokens_per_s = 0;
  int64_t tokens = 0;
};

Timing time_one(Engine& engine, const std::vector<int32_t>& prompt, int batch, int max_tokens, torch::Device device) {
  using clock = std::chrono::steady_clock;
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  sync();
  auto t0 = clock::now();
  std::optional<clock::time_point> first;
  int64_t columns = 0;
  engine.generate(prompt, batch, max_tokens, 0.0, 0, 42, [&](const std::vector<int32_t>&, const std::vector<int32_t>&) {
    if (!first) first = clock::now();
    ++columns;
    return true;
  });
  sync();
  auto t1 = clock::now();
  Timing t;
  t.tokens = columns * batch;
  double total = std::chrono::duration<double, std::milli>(t1 - t0).count();
  t.ttft_ms = first ? std::chrono::duration<double, std::milli>(*first - t0).count() : total;
  t.tpot_ms = columns > 1 ? (total - t.ttft_ms) / double(columns - 1) : 0.0;
  t.tokens_per_s = total > 0 ? double(t.tokens) / (total / 1000.0) : 0.0;
  return t;
}

// Milliseconds to the first token of prompt through the batch engine.
double time_first_token(BatchEngine& engine, const std::vector<int32_t>& prompt, torch::Device device) {
  auto t0 = std::chrono::steady_clock::now();
  engine.generate(prompt, 1, 0.0, 0, 42, [](int32_t) { return true; });
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

int infer_bench_main(int argc, char** argv) {
  std::string source = "sft", device_type, batch_sizes_s = "1,8,32", dtype = "float32";
  std::optional<std::string> model_tag;
  std::optional<int64_t> step;
  int64_t depth = 0, head_dim = 64, aspect_ratio = 64, vocab_size = 32768, max_seq_len = 512;
  int prompt_len = 64, max_tokens = 64, warmup = 1, repeats = 3;
  int second_turn = 0;
  bool as_json = false;
  Flags app{"Measure inference speed: TTFT, time per output token, tokens/s", "nanochat infer_bench"};
  app.add_option("-i,--source", source, "checkpoint source: base|sft|rl")->check(CLI::IsMember({"base", "sft", "rl"}));
  app.add_option("-g,--model-tag", model_tag, "model tag to load (default: the largest)");
  app.add_option("-s,--step", step, "step to load (default: the last)")->check(CLI::NonNegativeNumber);
  app.add_option("--depth", depth, "benchmark a randomly initialized model of this depth instead of a checkpoint");
  app.add_option("--head-dim", head_dim, "with --depth: head dimension");
  app.add_option("--aspect-ratio", aspect_ratio, "with --depth: model dim = depth x aspect ratio");
  app.add_option("--vocab-size", vocab_size, "with --depth: vocabulary size");
  app.add_option("--max-seq-len", max_seq_len, "with --depth: context length");
  app.add_option("--batch-sizes", batch_sizes_s, "comma-separated batch sizes");
  app.add_option("--prompt-len", prompt_len, "prompt tokens")->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", max_tokens, "new tokens per row")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed passes per batch size")->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", repeats, "timed passes per batch size (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--device-type", device_type, "cuda|cpu (empty = autodetect)")
      ->check(CLI::IsMember({"", "cuda", "cpu"}));
  app.add_option("--dtype", dtype, "weights for decoding: float32 (as loaded), bfloat16 or int8 (CPU)")
      ->check(CLI::IsMember(kWeightDtypes));
  app.add_option("--second-turn", second_turn,
                 "time a chat's second turn of this many new tokens, with and without the prefix cache")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", as_json, "print one JSON object instead of a table");
  if (int rc = app.parse_or_exit(argc, argv); rc >= 0) return rc;
  use_decode_omp_wait(argc, argv);
  configure_cpu_threads();

  std::vector<int> batch_sizes;
  for (const auto& part : CLI::detail::split(batch_sizes_s, ',')) {
    try {
      batch_sizes.push_back(std::stoi(part));
    } catch (...) {
      fail("--batch-sizes={} is not a comma-separated list of integers", batch_sizes_s);
    }
    if (batch_sizes.back() < 1) fail("--batch-sizes entries must be >= 1");
  }

  ComputeContext ctx = compute_init(device_type);
  GPT model{nullptr};
  std::optional<Tokenizer> owned_tok;
  std::string label;
  std::optional<LoadedModel> lm;
  if (depth > 0) {
    GPTConfig c;
    c.n_layer = depth;
    c.n_embd = (depth * aspect_ratio + head_dim - 1) / head_dim * head_dim;
    c.n_head = c.n_kv_head = c.n_embd / head_dim;
    c.vocab_size = vocab_size;
    c.sequence_len = max_seq_len;
    c.window_pattern = "L";
    model = GPT(c, ctx.device);
    model->init_weights();
    // Stand-in vocabulary of the model's size (bytes, then byte pairs) so the special ids sit at the top, where a
    // random model rarely lands on them and ends a row early.
    Ranks ranks;
    for (int32_t id = 0; id < int32_t(vocab_size) - int32_t(kSpecialTokens.size()); ++id)
      ranks.emplace_back(
          id < 256 ? std::string(1, char(id)) : std::string{char((id - 256) / 256), char((id - 256) % 256)}, id);
    owned_tok = make_nanochat_tokenizer(std::move(ranks));
    label = fmt::format("random d{} (n_embd {}, head_dim {}, vocab {})", depth, c.n_embd, head_dim, vocab_size);
  } else {
    lm = load_model(source, ctx.device, "eval", model_tag, step);
    model = lm->model;
    label = fmt::format("{} {} step {}", source, lm->dir.filename().string(), lm->step);
  }
  model->eval();
  pack_weights(*model, dtype);
  if (prompt_len + max_tokens + second_turn > model->config.sequence_len)
    fail("--prompt-len + --max-tokens + --second-turn = {} exceeds the model's context of {}",
         prompt_len + max_tokens + second_turn, model->config.sequence_len);
  const Tokenizer& tok = owned_tok ? *owned_tok : lm->tokenizer;
  Engine engine(model, tok);

  // A fixed pseudo-random prompt of ordinary tokens, so runs are comparable.
  std::mt19937 rng(1234);
  std::vector<int32_t> prompt = {tok.get_bos_token_id()};
  int32_t max_ordinary = std::min<int32_t>(tok.get_bos_token_id(), int32_t(model->config.vocab_size)) - 1;
  std::uniform_int_distribution<int32_t> dist(0, std::max(0, max_ordinary));
  while (int(prompt.size()) < prompt_len) prompt.push_back(dist(rng));

  if (second_turn > 0) {
    // The first turn (prompt and greedy reply) runs on both engines untimed; each repeat then asks a second turn
    // with new tokens of its own, so the cached engine can reuse only the first turn, as in a chat.
    BatchEngine cached(model, tok, 1, BatchEngine::kPrefillChunk, int64_t(1) << 30), plain(model, tok, 1);
    std::vector<int32_t> turn = prompt;
    cached.generate(prompt, max_tokens, 0.0, 0, 42, [&](int32_t t) {
      turn.push_back(t);
      return true;
    });
    std::vector<double> with, without;
    for (int r = 0; r < warmup + repeats; ++r) {
      std::vector<int32_t> next = turn;
      while (int(next.size()) < int(turn.size()) + second_turn) next.push_back(dist(rng));
      const double a = time_first_token(plain, next, ctx.device), b = time_first_token(cached, next, ctx.device);
      if (r >= warmup) without.push_back(a), with.push_back(b);
    }
    const double m_without = median(without), m_with = median(with);
    print0f("infer_bench: {} on {} ({} threads), dtype {}: second turn of {} tokens after {} ({} prompt + {} reply)",
            label, ctx.device.str(), torch::get_num_threads(), c10::toString(compute_dtype()), second_turn, turn.size(),
            prompt_len, turn.size() - size_t(prompt_len));
    print0f("TTFT without the prefix cache {:.2f} ms, with it {:.2f} ms ({:.1f}x; {} prompt tokens reused in all)",
            m_without, m_with, m_with > 0 ? m_without / m_with : 0.0, cached.prefix_cache_stats().tokens_saved);
    if (as_json)
      print0(nlohmann::json{{"model", label},
                            {"device", ctx.device.str()},
                            {"threads", torch::get_num_threads()},
                            {"conversation_tokens", turn.size()},
                            {"second_turn_tokens", second_turn},
                            {"ttft_ms_without_prefix_cache", m_without},
                            {"ttft_ms_with_prefix_cache", m_with}}
                 .dump());
    return 0;
  }

  nlohmann::json results = nlohmann::json::array();
  print0f("infer_bench: {} on {} ({} threads), dtype {}, weights {}, prompt {} tokens, {} new tokens, greedy", label,
          ctx.device.str(), torch::get_num_threads(), c10::toString(compute_dtype()), dtype, prompt_len, max_tokens);
  if (!as_json) print0f("{:>6} | {:>10} | {:>10} | {:>12}", "batch", "TTFT ms", "TPOT ms", "tokens/s");
  for (int bs : batch_sizes) {
    for (int w = 0; w < warmup; ++w) time_one(engine, prompt, bs, max_tokens, ctx.device);
    std::vector<double> ttft, tpot, tps;
    for (int r = 0; r < repeats; ++r) {
      Timing t = time_one(engine, prompt, bs, max_tokens, ctx.device);
      ttft.push_back(t.ttft_ms), tpot.push_back(t.tpot_ms), tps.push_back(t.tokens_per_s);
    }
    double m_ttft = median(ttft), m_tpot = median(tpot), m_tps = median(tps);
    if (!as_json) print0f("{:>6} | {:>10.2f} | {:>10.2f} | {:>12.1f}", bs, m_ttft, m_tpot, m_tps);
    results.push_back({{"batch_size", bs}, {"ttft_ms", m_ttft}, {"tpot_ms", m_tpot}, {"tokens_per_s", m_tps}});
  }
  if (as_json)
    print0(nlohmann::json{{"model", label},
                          {"device", ctx.device.str()},
                          {"threads", torch::get_num_threads()},
                          {"weights", dtype},
                          {"prompt_len", prompt_len},
                          {"max_tokens", max_tokens},
                          {"results", results}}
               .dump());
  return 0;
}
