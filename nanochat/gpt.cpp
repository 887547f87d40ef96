// gpt: see gpt.h.
#include "nanochat/gpt.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include <unistd.h>

#include "nanochat/common.h"
#include "nanochat/compute.h"
#include "nanochat/cuda/relu_square.h"
#include "nanochat/cpu/decode.h"
#include "nanochat/flash_attention.h"
#include "nanochat/fp8.h"
#include "nanochat/cpu/small_linear.h"

namespace nanochat {

// ---------------------------------------------------------------------------------------------------------------
// Config and shape-only accounting

nlohmann::ordered_json config_to_json(const GPTConfig& c) {
  return nlohmann::ordered_json{{"sequence_len", c.sequence_len},
                                {"vocab_size", c.vocab_size},
                                {"n_layer", c.n_layer},
                                {"n_head", c.n_head},
                                {"n_kv_head", c.n_kv_head},
                                {"n_embd", c.n_embd},
                                {"window_pattern", c.window_pattern}};
}

GPTConfig config_from_json(const nlohmann::json& j) {
  GPTConfig c;
  try {
    // Whole numbers only: nlohmann would truncate 2.5 to 2 and wrap 1e30.
    auto whole = [&](const char* key) {
      const nlohmann::json& v = j.at(key);
      if (!v.is_number_integer())
        fail("model config's {} is {}; it must be a whole number (the checkpoint's meta is damaged or hand-edited)",
             key, v.dump());
      return v.get<int64_t>();
    };
    c.sequence_len = whole("sequence_len");
    c.vocab_size = whole("vocab_size");
    c.n_layer = whole("n_layer");
    c.n_head = whole("n_head");
    c.n_kv_head = whole("n_kv_head");
    c.n_embd = whole("n_embd");
    c.window_pattern = j.contains("window_pattern") ? j.at("window_pattern").get<std::string>() : "L";
  } catch (const nlohmann::json::exception& e) {
    fail(
        "model config is incomplete or malformed ({}); it needs sequence_len, vocab_size, n_layer, n_head, "
        "n_kv_head, n_embd",
        e.what());
  }
  return c;
}

void validate_config(const GPTConfig& c) {
  if (c.n_layer < 1 || c.n_head < 1 || c.n_kv_head < 1 || c.n_embd < 1 || c.vocab_size < 1 || c.sequence_len < 1)
    fail(
        "model config needs positive sizes (n_layer={}, n_head={}, n_kv_head={}, n_embd={}, vocab_size={}, "
        "sequence_len={})",
        c.n_layer, c.n_head, c.n_kv_head, c.n_embd, c.vocab_size, c.sequence_len);
  if (c.n_embd % c.n_head != 0) fail("n_embd={} must be divisible by n_head={}", c.n_embd, c.n_head);
  if (c.n_kv_head > c.n_head || c.n_head % c.n_kv_head != 0)
    fail("n_kv_head={} must divide n_head={}", c.n_kv_head, c.n_head);
  if ((c.n_embd / c.n_head) % 2 != 0) fail("head dim {} must be even for rotary embeddings", c.n_embd / c.n_head);
  // Building the model takes at least its fp32 parameters (built on the CPU, then moved) and the rotary tables
  // (cos and sin for 10x sequence_len). Refuse when that alone exceeds the machine's memory, before allocating:
  // otherwise a typo'd size hangs in the constructor or dies in the allocator with std::bad_alloc.
  const double d = double(c.n_embd), L = double(c.n_layer), V = double(padded_vocab_size(c));
  const double kv_dim = double(c.n_kv_head) * (d / double(c.n_head)), n_ve = std::ceil(L / 2);
  const double params = 2 * V * d + L * (10 * d * d + 2 * kv_dim * d) + n_ve * V * kv_dim;
  const double bytes = 4 * params + 4 * 10.0 * double(c.sequence_len) * (d / double(c.n_head));
  const double memory = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
  if (bytes > memory)
    fail(
        "a model with n_layer={} n_embd={} vocab_size={} sequence_len={} needs at least {:.1f} GiB to build "
        "(fp32 parameters and rotary tables); this machine has {:.1f} GiB of memory",
        c.n_layer, c.n_embd, c.vocab_size, c.sequence_len, bytes / (1 << 30), memory / (1 << 30));
}

int64_t padded_vocab_size(const GPTConfig& c, int64_t pad_to) { return (c.vocab_size + pad_to - 1) / pad_to * pad_to; }

bool has_ve(int64_t layer_idx, int64_t n_layer) { return layer_idx % 2 == (n_layer - 1) % 2; }

std::vector<std::pair<int64_t, int64_t>> compute_window_sizes(const GPTConfig& c) {
  std::string pattern = c.window_pattern;
  for (auto& ch : pattern) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (pattern.empty() || pattern.find_first_not_of("SL") != std::string::npos)
    fail("--window-pattern={} is invalid; use only the letters S (short window) and L (full context), e.g. SSSL",
         c.window_pattern);
  int64_t long_window = c.sequence_len;
  // A quarter of the context, rounded up to FA3's 128-row tile: ceil(ceil(T/4)/128)*128 (2048 -> 512, 512 -> 128).
  int64_t short_window = -floor_div(floor_div(-long_window, 4), 128) * 128;
  std::vector<std::pair<int64_t, int64_t>> w;
  for (int64_t i = 0; i < c.n_layer; ++i)
    w.push_back({pattern[i % pattern.size()] == 'L' ? long_window : short_window, 0});
  w.back() = {long_window, 0};
  return w;
}

ParamCounts count_params(const GPTConfig& c) {
  ParamCounts p;
  int64_t Vp = padded_vocab_size(c), d = c.n_embd, Dh = c.n_embd / c.n_head, kv = c.n_kv_head * Dh;
  p.wte = Vp * d;
  p.lm_head = Vp * d;
  for (int64_t i = 0; i < c.n_layer; ++i) {
    p.transformer_matrices += d * d + 2 * kv * d + d * d + 8 * d * d;  // c_q, c_k, c_v, c_proj, c_fc, mlp.c_proj
    if (has_ve(i, c.n_layer)) {
      p.value_embeds += Vp * kv;
      p.transformer_matrices += c.n_kv_head * CausalSelfAttentionImpl::kVeGateChannels;
    }
  }
  p.scalars = 2 * c.n_layer + 24 + 1 + 1;  // resid, x0, smear_gate [1,24], smear_lambda, backout_lambda
  p.total = p.wte + p.value_embeds + p.lm_head + p.transformer_matrices + p.scalars;
  return p;
}

static int64_t flops_from_counts(const GPTConfig& c, const ParamCounts& p) {
  int64_t nparams = p.total;
  int64_t exclude = p.wte + p.value_embeds + p.scalars;  // embeddings and all scalars do no matmul work
  int64_t h = c.n_head, q = c.n_embd / c.n_head, t = c.sequence_len, attn = 0;
  for (auto [left, right] : compute_window_sizes(c)) attn += 12 * h * q * (left < 0 ? t : std::min(left, t));
  return 6 * (nparams - exclude) + attn;
}

int64_t estimate_flops(const GPTConfig& c) { return flops_from_counts(c, count_params(c)); }

// ---------------------------------------------------------------------------------------------------------------
// Building blocks

// RMSNorm and rotary are autograd Functions with hand-written backward passes: the composite versions record
// five to ten small ops each (and slice gradients that allocate and zero full-size tensors), which on CPU cost
// more than the math. Both are checked end to end by the gradient parity test.
namespace {

// F.rms_norm's default eps (Python's norm passes none): the epsilon of the type it computes in, so fp32's for bf16
// and fp16 inputs (they are normalized in fp32), not bf16's 2^-7.
double dtype_eps(torch::ScalarType t) {
  return t == torch::kDouble ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
}

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    bool low = x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kHalf;
    auto xf = low ? x.to(torch::kFloat) : x;
    auto r = torch::rsqrt(xf.square().mean(-1, true).add_(dtype_eps(x.scalar_type())));
    auto y = xf * r;
    ctx->save_for_backward({y, r});
    return low ? y.to(x.scalar_type()) : y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto y = saved[0], r = saved[1];
    auto g = grad_out[0];
    auto gf = g.to(y.scalar_type());
    // dx = r · (g − y · mean(g·y))
    auto dx = (gf - y * (gf * y).mean(-1, true)).mul_(r);
    return {dx.to(g.scalar_type())};
  }
};

torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  int64_t d = x.size(3) / 2;
  auto x1 = x.narrow(3, 0, d), x2 = x.narrow(3, d, d);
  auto y1 = torch::addcmul(x1 * cos, x2, sin);
  auto y2 = torch::addcmul(x2 * cos, x1, sin, -1);
  return torch::cat({y1, y2}, 3);
}

struct RotaryFn : torch::autograd::Function<RotaryFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    return rotate(x, cos, sin);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    // The rotation by -θ is orthogonal: its gradient is the rotation by +θ (sin negated).
    auto cos = ctx->saved_data["cos"].toTensor(), sin = ctx->saved_data["sin"].toTensor();
    return {rotate(grad_out[0], cos, -sin), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x) {
  // CUDA: libtorch's own rms_norm (fused forward and backward kernels there), called as Python calls it (no eps, so
  // libtorch's default). The CPU keeps RmsNormFn, the tests' reference.
  if (x.is_cuda()) return at::rms_norm(x, {x.size(-1)}, std::nullopt, std::nullopt);
  return RmsNormFn::apply(x);
}

torch::Tensor apply_rotary_emb(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  return RotaryFn::apply(x, cos.detach(), sin.detach());
}

CastLinearImpl::CastLinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
}
torch::Tensor CastLinearImpl::forward(const torch::Tensor& x) {
  if (fp8) return fp8_linear(x, weight);
  // Decoding: a bandwidth-bound matrix-vector product, from the packed copy when there is one.
  if (packed.defined() && small_linear_applies(x, packed, packed_scale)) return small_linear(x, packed, packed_scale);
  if (small_linear_applies(x, weight)) return small_linear(x, weight);
  return torch::linear(x, weight.to(x.scalar_type()));
}

TokenEmbeddingImpl::TokenEmbeddingImpl(int64_t num_embeddings, int64_t dim) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}));
}
torch::Tensor TokenEmbeddingImpl::forward(const torch::Tensor& idx) { return torch::embedding(weight, idx); }

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const GPTConfig& c, int64_t layer_idx)
    : layer_idx(layer_idx), n_head(c.n_head), n_kv_head(c.n_kv_head), n_embd(c.n_embd), head_dim(c.n_embd / c.n_head) {
  // Registration order is Python's attribute order: c_q, c_k, c_v, c_proj, ve_gate.
  c_q = register_module("c_q", CastLinear(n_embd, n_head * head_dim));
  c_k = register_module("c_k", CastLinear(n_embd, n_kv_head * head_dim));
  c_v = register_module("c_v", CastLinear(n_embd, n_kv_head * head_dim));
  c_proj = register_module("c_proj", CastLinear(n_embd, n_embd));
  if (has_ve(layer_idx, c.n_layer)) ve_gate = register_module("ve_gate", CastLinear(kVeGateChannels, n_kv_head));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& ve,
                                               const torch::Tensor& cos, const torch::Tensor& sin, int64_t window,
                                               KVCache* kv_cache) {
  int64_t B = x.size(0), T = x.size(1);
  auto q = c_q(x).view({B, T, n_head, head_dim});
  auto k = c_k(x).view({B, T, n_kv_head, head_dim});
  auto v = c_v(x).view({B, T, n_kv_head, head_dim});
  if (ve.defined()) {
    // Value residual: mix in the layer's value embedding through a per-head input-dependent gate in (0, 3).
    auto gate = 3 * torch::sigmoid(ve_gate(x.narrow(-1, 0, kVeGateChannels)));  // [B,T,Hkv]
    v = v + gate.unsqueeze(-1) * ve.view({B, T, n_kv_head, head_dim});
  }
  q = apply_rotary_emb(q, cos, sin);
  k = apply_rotary_emb(k, cos, sin);
  q = rms_norm(q) * 1.2;  // QK-norm, then a sharper softmax split between q and k
  k = rms_norm(k) * 1.2;
  torch::Tensor y;
  if (!kv_cache) {
    y = flash_attn_func(q, k, v, window);
  } else {
    // This pass uses rows [0, B) of the cache, which may hold more (continuous batching keeps spare rows).
    auto [k_cache, v_cache] = kv_cache->layer(layer_idx);
    k_cache = k_cache.narrow(0, 0, B), v_cache = v_cache.narrow(0, 0, B);
    if (kv_cache->uniform(B))
      y = flash_attn_with_kvcache(q, k_cache, v_cache, k, v, kv_cache->row_pos(0), window);
    else
      y = flash_attn_with_kvcache_rows(q, k_cache, v_cache, k, v, kv_cache->positions_tensor(B, q.device()),
                                       kv_cache->max_pos(B), window);
    if (layer_idx == kv_cache->n_layers() - 1) kv_cache->advance_rows(B, T);  // after the last layer has written
  }
  return c_proj(y.contiguous().view({B, T, -1}));
}

MLPImpl::MLPImpl(const GPTConfig& c) {
  c_fc = register_module("c_fc", CastLinear(c.n_embd, 4 * c.n_embd));
  c_proj = register_module("c_proj", CastLinear(4 * c.n_embd, c.n_embd));
}
torch::Tensor MLPImpl::forward(const torch::Tensor& x) { return c_proj(relu_square(c_fc(x))); }

BlockImpl::BlockImpl(const GPTConfig& c, int64_t layer_idx) {
  attn = register_module("attn", CausalSelfAttention(c, layer_idx));
  mlp = register_module("mlp", MLP(c));
}
torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& ve, const torch::Tensor& cos,
                                 const torch::Tensor& sin, int64_t window, KVCache* kv_cache) {
  auto y = x + attn(rms_norm(x), ve, cos, sin, window, kv_cache);
  return y + mlp(rms_norm(y));
}

namespace {

// Gradient checkpointing (--grad-checkpoint): the block runs without a graph in forward, keeping only its inputs;
// backward runs it again with one and back-propagates through that. The parameters' gradients accumulate into
// their .grad there, as in any backward; the inputs' are returned. No RNG is involved (no dropout), so the
// recomputation gives the same values.
struct BlockRecompute : torch::CustomClassHolder {
  Block block{nullptr};
  torch::Tensor cos, sin;
  int64_t window = -1;
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& ve) {
    return block->forward(x, ve, cos, sin, window, nullptr);
  }
};

struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
  // ve is optional: layers without a value embedding pass nullopt (an undefined tensor is no autograd input).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const std::optional<torch::Tensor>& ve_opt,
                               c10::intrusive_ptr<BlockRecompute> recompute) {
    const torch::Tensor ve = ve_opt.value_or(torch::Tensor());
    ctx->save_for_backward({x, ve});
    auto y = recompute->run(x, ve);  // grad mode is off inside a custom forward: nothing else is kept
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(std::move(recompute));
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto recompute = c10::static_intrusive_pointer_cast<BlockRecompute>(ctx->saved_data["recompute"].toCapsule());
    auto x = saved[0].detach().requires_grad_(true);
    auto ve = saved[1].defined() ? saved[1].detach().requires_grad_(true) : torch::Tensor();
    torch::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      y = recompute->run(x, ve);
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), ve.defined() ? ve.grad() : torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor checkpointed_block(const Block& block, const torch::Tensor& x, const torch::Tensor& ve,
                                 const torch::Tensor& cos, const torch::Tensor& sin, int64_t window) {
  auto r = c10::make_intrusive<BlockRecompute>();
  r->block = block, r->cos = cos, r->sin = sin, r->window = window;
  return CheckpointedBlock::apply(x, ve.defined() ? std::optional<torch::Tensor>(ve) : std::nullopt, std::move(r));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// GPT

constexpr double kLogitSoftcap = 15.0;  // logits = 15·tanh(z / 15)

GPTImpl::GPTImpl(const GPTConfig& cfg, torch::Device device) : config(cfg) {
  validate_config(config);
  window_sizes = compute_window_sizes(config);
  padded_vocab = padded_vocab_size(config);
  if (padded_vocab != config.vocab_size)
    print0f("Padding vocab_size from {} to {} for efficiency", config.vocab_size, padded_vocab);
  int64_t L = config.n_layer, d = config.n_embd, kv_dim = config.n_kv_head * (d / config.n_head);
  // Python registers these four directly on the model, so named_parameters() yields them first,
  // then the submodules in attribute order: transformer, lm_head, smear_gate, value_embeds.
  resid_lambdas = register_parameter("resid_lambdas", torch::ones({L}));
  x0_lambdas = register_parameter("x0_lambdas", torch::zeros({L}));
  smear_lambda = register_parameter("smear_lambda", torch::zeros({1}));
  backout_lambda = register_parameter("backout_lambda", torch::full({1}, 0.2));
  wte = TokenEmbedding(padded_vocab, d);
  h = torch::nn::ModuleList();
  for (int64_t i = 0; i < L; ++i) {
    blocks.push_back(Block(config, i));
    h->push_back(blocks.back());
  }
  transformer = register_module(
      "transformer", torch::nn::ModuleDict(std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>{
                         {"wte", wte.ptr()}, {"h", h.ptr()}}));
  lm_head = register_module("lm_head", CastLinear(d, padded_vocab));
  smear_gate = register_module("smear_gate", CastLinear(24, 1));
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> ves;
  for (int64_t i = 0; i < L; ++i)
    if (has_ve(i, L)) {
      ve_by_layer.emplace(i, TokenEmbedding(padded_vocab, kv_dim));
      ves.push_back({std::to_string(i), ve_by_layer.at(i).ptr()});
    }
  value_embeds = register_module("value_embeds", torch::nn::ModuleDict(ves));
  rotary_seq_len = config.sequence_len * 10;  // 10x headroom; forward fails beyond it
  to(device);
  precompute_rotary();
}

void GPTImpl::precompute_rotary() {
  int64_t head_dim = config.n_embd / config.n_head;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(get_device());
  auto channel_range = torch::arange(0, head_dim, 2, opts);
  auto inv_freq = 1.0 / torch::pow(100000.0, channel_range / static_cast<double>(head_dim));
  auto t = torch::arange(rotary_seq_len, opts);
  auto freqs = torch::outer(t, inv_freq);
  auto dt = compute_dtype();
  auto c = freqs.cos().to(dt).unsqueeze(0).unsqueeze(2), s = freqs.sin().to(dt).unsqueeze(0).unsqueeze(2);
  if (!rotary_cos.defined()) {  // registered once so that to(device) moves them
    rotary_cos = register_buffer("cos", c);
    rotary_sin = register_buffer("sin", s);
  } else {
    rotary_cos.set_data(c);
    rotary_sin.set_data(s);
  }
}

void GPTImpl::init_weights() {
  torch::NoGradGuard no_grad;
  // Same order and distributions as Python, so the same seed gives the same model.
  wte->weight.normal_(0.0, 0.8);
  lm_head->weight.normal_(0.0, 0.001);
  double s = std::sqrt(3.0) * std::pow(static_cast<double>(config.n_embd), -0.5);  // uniform with std 1/sqrt(d)
  for (auto& b : blocks) {
    b->attn->c_q->weight.uniform_(-s, s);
    b->attn->c_k->weight.uniform_(-s, s);
    b->attn->c_v->weight.uniform_(-s, s);
    b->attn->c_proj->weight.zero_();
    b->mlp->c_fc->weight.uniform_(-s * 0.4, s * 0.4);
    b->mlp->c_proj->weight.zero_();
  }
  int64_t L = config.n_layer;
  for (int64_t i = 0; i < L; ++i) {
    double frac = static_cast<double>(i) / std::max<int64_t>(L - 1, 1);
    resid_lambdas[i].fill_(1.15 - 0.10 * frac);
    x0_lambdas[i].fill_(0.20 - 0.15 * frac);
  }
  for (auto& [i, ve] : ve_by_layer) ve->weight.uniform_(-s, s);
  for (auto& b : blocks)
    if (b->attn->ve_gate) b->attn->ve_gate->weight.uniform_(0.0, 0.02);
  // Python never initializes these three (they come from uninitialized memory there). We choose the
  // constructor's intent: a closed smear gate (smear_gate = 0, smear_lambda = 0) and backout_lambda = 0.2.
  smear_gate->weight.zero_();
  smear_lambda.fill_(0.0);
  backout_lambda.fill_(0.2);
  precompute_rotary();
  // Embeddings are stored in the compute dtype (fp16 keeps fp32: its GradScaler cannot unscale fp16 grads).
  auto dt = compute_dtype();
  if (dt != torch::kHalf) {
    wte->weight.set_data(wte->weight.to(dt));
    for (auto& [i, ve] : ve_by_layer) ve->weight.set_data(ve->weight.to(dt));
  }
}

// nanochat/gpt.py GPT.forward up to the final norm: embed, norm, smear, the blocks (each with its residual and x0
// lambdas and, on alternating layers, a value embedding), backout, norm. With a KV cache, the rotary positions and
// the smear continue each row's cached sequence (KVCache::rotary, KVCache::smear) and attention reads and writes
// the cache. One token per row on the CPU is decode.cpp's fused step instead (same math, reads the cache in place,
// small_linear's matrix-vector kernels): it takes over at the first line.
torch::Tensor GPTImpl::hidden_states(const torch::Tensor& idx, KVCache* kv_cache) {
  if (kv_cache && decode_step_applies(*this, idx, *kv_cache)) return decode_step(*this, idx, *kv_cache);
  TORCH_CHECK(idx.dim() == 2, "GPT::forward expects idx of shape [B, T]");
  const int64_t B = idx.size(0), T = idx.size(1);
  if (kv_cache)
    TORCH_CHECK(B <= kv_cache->batch_size(), "GPT::forward: ", B, " rows but the KV cache holds ",
                kv_cache->batch_size());
  if (!kv_cache) {
    TORCH_CHECK(T > 1, "a forward pass without a KV cache needs at least 2 tokens");
    TORCH_CHECK(T <= rotary_cos.size(1), "sequence length grew beyond the rotary table: ", T, " > ",
                rotary_cos.size(1));
  }
  auto [cos, sin] = kv_cache ? kv_cache->rotary(rotary_cos, rotary_sin, B, T)
                             : std::pair{rotary_cos.narrow(1, 0, T), rotary_sin.narrow(1, 0, T)};

  auto x = rms_norm(wte(idx).to(compute_dtype()));
  // Smear: mix the previous token's normalized embedding into each position through a learned gate.
  auto smear = [&](const torch::Tensor& cur, const torch::Tensor& prev) {
    auto gate = smear_lambda.to(cur.scalar_type()) * torch::sigmoid(smear_gate(cur.narrow(-1, 0, 24)));
    return cur + gate * prev;
  };
  x = kv_cache ? kv_cache->smear(x, smear)
               : torch::cat({x.narrow(1, 0, 1), smear(x.narrow(1, 1, T - 1), x.narrow(1, 0, T - 1))}, 1);

  auto x0 = x;
  int64_t L = config.n_layer, backout_layer = L / 2;
  torch::Tensor x_backout;
  for (int64_t i = 0; i < L; ++i) {
    x = resid_lambdas[i] * x + x0_lambdas[i] * x0;
    torch::Tensor ve;
    if (auto it = ve_by_layer.find(i); it != ve_by_layer.end()) ve = it->second(idx).to(x.scalar_type());
    if (grad_checkpoint && !kv_cache && torch::GradMode::is_enabled())
      x = checkpointed_block(blocks[i], x, ve, cos, sin, window_sizes[i].first);
    else
      x = blocks[i](x, ve, cos, sin, window_sizes[i].first, kv_cache);
    if (i == backout_layer) x_backout = x;
  }
  // Backout: remove part of the mid-network residual (low-level features) before the head.
  if (x_backout.defined()) x = x - backout_lambda.to(x.scalar_type()) * x_backout;
  return rms_norm(x);
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx, const torch::Tensor& targets, KVCache* kv_cache,
                               const std::string& loss_reduction) {
  auto x = hidden_states(idx, kv_cache);
  if (targets.defined() && loss_reduction == "mean" && fused_loss)
    return fused_linear_softcap_ce(x.reshape({-1, x.size(-1)}), lm_head->weight.to(x.scalar_type()), config.vocab_size,
                                   targets.reshape({-1}), kLogitSoftcap);
  auto logits = logits_from_hidden(x);
  if (!targets.defined()) return logits;
  namespace F = torch::nn::functional;
  auto opts = F::CrossEntropyFuncOptions().ignore_index(-1);
  if (loss_reduction == "mean")
    opts = opts.reduction(torch::kMean);
  else if (loss_reduction == "none")
    opts = opts.reduction(torch::kNone);
  else if (loss_reduction == "sum")
    opts = opts.reduction(torch::kSum);
  else
    fail("loss_reduction={} is not supported; use mean, none or sum", loss_reduction);
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}), opts);
}

torch::Tensor GPTImpl::logits_from_hidden(const torch::Tensor& x) {
  auto logits = lm_head(x);
  if (padded_vocab != config.vocab_size) logits = logits.narrow(-1, 0, config.vocab_size);
  logits = logits.to(torch::kFloat);
  return kLogitSoftcap * torch::tanh(logits / kLogitSoftcap);
}

torch::Tensor GPTImpl::forward_last(const torch::Tensor& idx, KVCache& kv_cache) {
  auto x = hidden_states(idx, &kv_cache);
  return logits_from_hidden(x.select(1, x.size(1) - 1));
}

int64_t GPTImpl::estimate_flops() const { return flops_from_counts(config, num_scaling_params()); }

ParamCounts GPTImpl::num_scaling_params() const {
  ParamCounts p;
  p.wte = wte->weight.numel();
  for (const auto& t : value_embeds->parameters()) p.value_embeds += t.numel();
  p.lm_head = lm_head->weight.numel();
  for (const auto& t : h->parameters()) p.transformer_matrices += t.numel();
  p.scalars = resid_lambdas.numel() + x0_lambdas.numel() + smear_gate->weight.numel() + smear_lambda.numel() +
              backout_lambda.numel();
  p.total = p.wte + p.value_embeds + p.lm_head + p.transformer_matrices + p.scalars;
  int64_t all = 0;
  for (const auto& t : parameters()) all += t.numel();
  TORCH_CHECK(all == p.total, "parameter count mismatch");
  return p;
}

std::vector<std::pair<std::string, torch::Tensor>> GPTImpl::state_dict() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

void GPTImpl::load_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors, bool strict) {
  torch::NoGradGuard no_grad;
  auto params = named_parameters();
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    auto* p = params.find(name);
    if (!p) {
      if (strict) fail("checkpoint has unexpected key '{}' (it does not match this model's config)", name);
      continue;
    }
    if (p->sizes() != t.sizes())
      fail("checkpoint tensor '{}' has shape {} but the model expects {}; the checkpoint's config does not match", name,
           c10::str(t.sizes()), c10::str(p->sizes()));
    p->set_data(t.to(p->device()));
    seen.insert(name);
  }
  if (strict)
    for (const auto& item : params)
      if (!seen.count(item.key())) fail("checkpoint is missing key '{}'", item.key());
}

std::vector<int64_t> GPTImpl::generate(const std::vector<int64_t>& tokens, int64_t max_tokens, double temperature,
                                       int64_t top_k, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto ids = torch::tensor(tokens, torch::kLong).unsqueeze(0).to(get_device());
  std::vector<int64_t> out;
  for (int64_t step = 0; step < max_tokens; ++step) {
    auto logits = forward(ids).select(1, ids.size(1) - 1);  // [1, V]
    if (top_k > 0) {
      auto kth = std::get<0>(torch::topk(logits, std::min<int64_t>(top_k, logits.size(-1))))
                     .narrow(-1, -1 + std::min<int64_t>(top_k, logits.size(-1)), 1);
      logits = logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
    }
    torch::Tensor next;
    if (temperature > 0) {
      auto probs = torch::softmax(logits / temperature, -1).to(torch::kCPU);
      next = torch::multinomial(probs, 1, false, gen).to(get_device());
    } else {
      next = logits.argmax(-1, true);
    }
    ids = torch::cat({ids, next}, 1);
    out.push_back(next.item<int64_t>());
  }
  return out;
}

}  // namespace nanochat
