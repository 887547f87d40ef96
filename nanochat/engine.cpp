// engine: see engine.h.
#include "nanochat/engine.h"

#include <algorithm>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>

#include "nanochat/calculator.h"
#include "nanochat/common.h"
#include "nanochat/compute.h"

namespace nanochat {

torch::Generator make_generator(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return gen;
}

torch::Tensor sample_next_token(const torch::Tensor& logits, torch::Generator& generator, double temperature,
                                int64_t top_k) {
  if (!(temperature >= 0.0)) fail("temperature must be >= 0, got {}", temperature);
  if (temperature < 1e-5) return logits.argmax(-1);
  // Sampling happens on the CPU with one CPU generator, so a seed gives the same tokens on every device.
  torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32);
  torch::Tensor choice;
  if (top_k > 0) {
    int64_t k = std::min<int64_t>(top_k, l.size(-1));
    auto [vals, idx] = l.topk(k, -1);
    auto probs = torch::softmax(vals / temperature, -1);
    choice = idx.gather(1, torch::multinomial(probs, 1, false, generator)).squeeze(1);
  } else {
    auto probs = torch::softmax(l / temperature, -1);
    choice = torch::multinomial(probs, 1, false, generator).squeeze(1);
  }
  return choice.to(logits.device());
}

TokenLogprobs token_logprobs(const torch::Tensor& logits_row, int32_t token, int top) {
  torch::Tensor lp = torch::log_softmax(logits_row.to(torch::kCPU, torch::kFloat32).reshape({-1}), -1);
  TokenLogprobs out;
  out.logprob = lp[token].item<float>();
  const int64_t k = std::min<int64_t>(std::max(top, 0), lp.size(0));
  if (k > 0) {
    auto [vals, idx] = lp.topk(k);
    auto v = vals.accessor<float, 1>();
    auto i = idx.accessor<int64_t, 1>();
    for (int64_t j = 0; j < k; ++j) out.top.emplace_back(int32_t(i[j]), v[j]);
  }
  return out;
}

RowState::RowState(const Tokenizer& tokenizer) : tok_(&tokenizer) {
  python_start_ = tokenizer.encode_special("<|python_start|>");
  python_end_ = tokenizer.encode_special("<|python_end|>");
  output_start_ = tokenizer.encode_special("<|output_start|>");
  output_end_ = tokenizer.encode_special("<|output_end|>");
  assistant_end_ = tokenizer.encode_special("<|assistant_end|>");
  bos_ = tokenizer.get_bos_token_id();
}

std::pair<int32_t, int32_t> RowState::step(int32_t sampled) {
  int32_t tok = sampled, mask = 1;
  if (!forced_.empty()) {
    tok = forced_.front();
    forced_.pop_front();
    mask = 0;
  }
  if (tok == assistant_end_ || tok == bos_) completed_ = true;
  if (tok == python_start_) {
    in_python_ = true;
    python_expr_.clear();
  } else if (tok == python_end_ && in_python_) {
    in_python_ = false;
    if (!python_expr_.empty()) {
      if (auto result = use_calculator(tok_->decode(python_expr_))) {
        forced_.push_back(output_start_);
        for (int32_t t : tok_->encode(*result)) forced_.push_back(t);
        forced_.push_back(output_end_);
      }
    }
    python_expr_.clear();
  } else if (in_python_) {
    python_expr_.push_back(tok);
  }
  return {tok, mask};
}

Engine::Engine(GPT model, const Tokenizer& tokenizer) : model_(std::move(model)), tokenizer_(tokenizer) {
  assistant_end_ = tokenizer_.encode_special("<|assistant_end|>");
  bos_ = tokenizer_.get_bos_token_id();
}

KVCache make_kv_cache(const GPT& model, int64_t batch, int64_t seq_len) {
  const GPTConfig& c = model->config;
  torch::Device device = model->get_device();
  // nanochat keeps the cache in bf16 on CUDA and fp32 elsewhere. A model computing in fp32 on CUDA
  // (NANOCHAT_DTYPE=float32) gets an fp32 cache: the same numbers as on the CPU, which Python's hard-wired bf16 breaks.
  torch::Dtype dtype = device.is_cuda() && compute_dtype() != torch::kFloat32 ? torch::kBFloat16 : torch::kFloat32;
  return KVCache(batch, c.n_kv_head, seq_len, c.n_embd / c.n_head, c.n_layer, device, dtype);
}

namespace {
torch::Tensor to_ids(const std::vector<int32_t>& v, int64_t rows, torch::Device device) {
  std::vector<int64_t> w(v.begin(), v.end());
  return torch::tensor(w, torch::kInt64).view({rows, -1}).to(device);
}
}  // namespace

void Engine::generate(const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature,
                      int64_t top_k, uint64_t seed, const StepCallback& on_step) {
  generate(tokens, num_samples, max_tokens, temperature, top_k, seed, -1,
           [&](const std::vector<int32_t>& col, const std::vector<int32_t>& mask, const std::vector<TokenLogprobs>*) {
             return on_step(col, mask);
           });
}

void Engine::generate(const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature,
                      int64_t top_k, uint64_t seed, int top_logprobs, const LogprobStepCallback& on_step) {
  if (tokens.empty()) fail("generate needs at least one prompt token");
  if (num_samples < 1) fail("num_samples must be >= 1, got {}", num_samples);
  if (!(temperature >= 0.0)) fail("temperature must be >= 0, got {}", temperature);
  torch::NoGradGuard no_grad;
  torch::Device device = model_->get_device();
  const int64_t T = int64_t(tokens.size());
  const int64_t rows = num_samples;
  torch::Generator gen = make_generator(seed);

  // 1) Prefill the prompt once, batch 1.
  KVCache prefill_cache = make_kv_cache(model_, 1, T);
  torch::Tensor logits = model_->forward_last(to_ids(tokens, 1, device), prefill_cache);
  logits = logits.expand({rows, logits.size(-1)});

  // 2) Clone it into a cache with room for every sample's completion.
  int64_t kv_len = max_tokens >= 0 ? T + max_tokens : std::max<int64_t>(model_->config.sequence_len, T + 1);
  KVCache cache = make_kv_cache(model_, rows, kv_len);
  cache.prefill(prefill_cache);
  const int64_t budget = kv_len - T;  // a column past this would not fit in the cache

  std::vector<RowState> state(size_t(rows), RowState{tokenizer_});
  std::vector<int32_t> col(size_t(rows), 0), mask(size_t(rows), 0);
  for (int64_t generated = 0; generated < budget; ++generated) {
    if (std::all_of(state.begin(), state.end(), [](const RowState& s) { return s.completed(); })) break;
    // Sample every row every step (rows keep consuming the generator even when a forced token wins).
    torch::Tensor next = sample_next_token(logits, gen, temperature, top_k).to(torch::kCPU);
    auto next_a = next.accessor<int64_t, 1>();
    for (int64_t i = 0; i < rows; ++i)
      std::tie(col[size_t(i)], mask[size_t(i)]) = state[size_t(i)].step(int32_t(next_a[i]));
    std::vector<TokenLogprobs> lps;
    if (top_logprobs >= 0)
      for (int64_t i = 0; i < rows; ++i) lps.push_back(token_logprobs(logits[i], col[size_t(i)], top_logprobs));
    if (!on_step(col, mask, top_logprobs >= 0 ? &lps : nullptr)) break;
    if (generated + 1 >= budget) break;  // the next column could not be used; skip its forward
    logits = model_->forward_last(to_ids(col, rows, device), cache);
  }
}

std::pair<std::vector<std::vector<int32_t>>, std::vector<std::vector<int32_t>>> Engine::generate_batch(
    const std::vector<int32_t>& tokens, int num_samples, int max_tokens, double temperature, int64_t top_k,
    uint64_t seed) {
  std::vector<std::vector<int32_t>> seqs(size_t(std::max(num_samples, 0)), tokens);
  std::vector<std::vector<int32_t>> masks(seqs.size(), std::vector<int32_t>(tokens.size(), 0));
  std::vector<bool> done(seqs.size(), false);
  generate(tokens, num_samples, max_tokens, temperature, top_k, seed,
           [&](const std::vector<int32_t>& col, const std::vector<int32_t>& mask) {
             for (size_t i = 0; i < seqs.size(); ++i) {
               if (done[i]) continue;
               if (col[i] == assistant_end_ || col[i] == bos_) {
                 done[i] = true;
               } else {
                 seqs[i].push_back(col[i]);
                 masks[i].push_back(mask[i]);
               }
             }
             return !std::all_of(done.begin(), done.end(), [](bool d) { return d; });
           });
  return {std::move(seqs), std::move(masks)};
}

}  // namespace nanochat
