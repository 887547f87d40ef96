// gpt: nanochat's GPT (nanochat/gpt.py) as a libtorch module. Rotary embeddings (base 100000, nanochat's sign),
// QK-norm then ×1.2, ReLU² MLP, parameter-free RMSNorm (F.rms_norm's eps), untied embeddings, GQA,
// per-layer sliding windows, value embeddings with input gates on alternating layers, resid/x0 lambdas, smear,
// backout, logit softcap 15, vocab padded to a multiple of 64.
//
//   GPTConfig cfg; cfg.n_layer = 4; ...
//   torch::manual_seed(42);               // compute_init does this
//   GPT model(cfg, device); model->init_weights();
//   auto loss = model->forward(idx, targets);               // mean cross-entropy (ignore_index -1)
//   auto logits = model->forward(idx);                       // [B, T, vocab_size] fp32
//   model->load_state_dict(named_tensors, /*strict=*/true);  // a Python state_dict, same keys
//
// Parameter names and named_parameters() order equal Python's state_dict keys and order (the optimizer groups
// and checkpoints depend on it). Not covered here: the optimizer (optim), checkpoint files (checkpoint_manager),
// batched sampling (engine).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nanochat/fused/linear_softcap_ce.h"
#include "nanochat/kv_cache.h"

namespace nanochat {

struct GPTConfig {
  int64_t sequence_len = 2048;
  int64_t vocab_size = 32768;
  int64_t n_layer = 12;
  int64_t n_head = 6;     // query heads
  int64_t n_kv_head = 6;  // key/value heads (GQA)
  int64_t n_embd = 768;
  std::string window_pattern = "SSSL";  // S/L tiled over layers; the last layer is always L
};

// meta.json's "model_config" object, key for key.
nlohmann::ordered_json config_to_json(const GPTConfig& c);  // Python's key order
// Reads a model_config object; a missing window_pattern defaults to "L" (older checkpoints, as Python patches).
GPTConfig config_from_json(const nlohmann::json& j);

// Counts per group, as Python's num_scaling_params(); total is the sum of all parameters.
struct ParamCounts {
  int64_t wte = 0, value_embeds = 0, lm_head = 0, transformer_matrices = 0, scalars = 0, total = 0;
  // transformer_matrices + lm_head: what the scaling laws call "parameters".
  int64_t scaling_params() const { return transformer_matrices + lm_head; }
};

// Shape-only facts about a config (no tensors needed, so they also work for depth-26 models on a laptop).
// One-line Error when the sizes are inconsistent (n_embd % n_head, odd head dim, ...) or the model alone cannot
// fit in this machine's memory; GPT's constructor checks it, and whoever plans a model before building it.
void validate_config(const GPTConfig& c);
int64_t padded_vocab_size(const GPTConfig& c, int64_t pad_to = 64);
bool has_ve(int64_t layer_idx, int64_t n_layer);  // value embedding on this layer?
// (left, right) per layer, FA3 style: (w, 0) attends keys p-w..p. Fails on characters other than S/L.
std::vector<std::pair<int64_t, int64_t>> compute_window_sizes(const GPTConfig& c);
ParamCounts count_params(const GPTConfig& c);
// Forward+backward FLOPs per token (nanochat/gpt.py GPT.estimate_flops): 6 × matmul params + Σ 12·H·Dh·min(window, T).
int64_t estimate_flops(const GPTConfig& c);

// Parameter-free RMSNorm over the last dim, as F.rms_norm without eps: eps is the epsilon of the type it computes
// in (fp32's for bf16/fp16 inputs, which are normalized in fp32 and cast back; fp64's for double).
torch::Tensor rms_norm(const torch::Tensor& x);
// Rotary embedding with nanochat's convention: y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos on the two halves.
torch::Tensor apply_rotary_emb(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// nn.Linear without bias whose fp32 master weight is cast to the activation's dtype at forward time
// (this replaces autocast: matmuls run in the compute dtype, the optimizer sees fp32).
class CastLinearImpl : public torch::nn::Module {
 public:
  CastLinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [out, in], left uninitialized: GPT::init_weights or a checkpoint fills it
  // For inference only (nanochat/cpu/pack_weights.h): the same matrix in bf16, or int8 with packed_scale [out] per
  // row, which decoding streams instead of weight; weight then holds exactly the values they stand for. Not saved.
  torch::Tensor packed, packed_scale;
  // Training with --fp8 (nanochat/fp8.py Float8Linear): the three matmuls run in FP8 through fp8_linear (fp8.h).
  // Set by convert_to_float8_training; Fp8Disabled turns it off for evaluation.
  bool fp8 = false;
};
TORCH_MODULE(CastLinear);

// nn.Embedding whose table is left uninitialized at construction, so building a model consumes no random
// numbers (Python builds on the meta device) and init_weights draws exactly Python's sequence.
class TokenEmbeddingImpl : public torch::nn::Module {
 public:
  TokenEmbeddingImpl(int64_t num_embeddings, int64_t dim);
  torch::Tensor forward(const torch::Tensor& idx);
  torch::Tensor weight;  // [num_embeddings, dim]
};
TORCH_MODULE(TokenEmbedding);

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  CausalSelfAttentionImpl(const GPTConfig& c, int64_t layer_idx);
  // x: normed residual [B,T,d]; ve: value embedding [B,T,Hkv·Dh] or undefined; cos/sin [1,T,1,Dh/2].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ve, const torch::Tensor& cos,
                        const torch::Tensor& sin, int64_t window, KVCache* kv_cache);
  int64_t layer_idx, n_head, n_kv_head, n_embd, head_dim;
  static constexpr int64_t kVeGateChannels = 12;
  CastLinear c_q{nullptr}, c_k{nullptr}, c_v{nullptr}, c_proj{nullptr}, ve_gate{nullptr};
};
TORCH_MODULE(CausalSelfAttention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const GPTConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  CastLinear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(MLP);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const GPTConfig& c, int64_t layer_idx);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ve, const torch::Tensor& cos,
                        const torch::Tensor& sin, int64_t window, KVCache* kv_cache);
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

class GPTImpl : public torch::nn::Module {
 public:
  // Allocates every parameter (uninitialized) on `device`; call init_weights() or load_state_dict() next.
  // Prints a note when the vocabulary gets padded, as Python does.
  explicit GPTImpl(const GPTConfig& config, torch::Device device = torch::kCPU);

  // Python's init_weights (nanochat/gpt.py GPT.init_weights), drawing from the global RNG in Python's order.
  void init_weights();

  // idx [B,T] int64. Without targets: logits [B,T,vocab_size] fp32. With targets [B,T] (−1 = ignore): the
  // cross-entropy, reduction "mean" (scalar) or "none" ([B·T], 0 at ignored positions). With a KV cache the
  // new keys/values are appended and the cache position advances by T.
  torch::Tensor forward(const torch::Tensor& idx, const torch::Tensor& targets = {}, KVCache* kv_cache = nullptr,
                        const std::string& loss_reduction = "mean");

  // Logits [B, vocab_size] fp32 at the last position only, through the KV cache (which advances by T as in
  // forward): what generation needs. A prompt's prefill skips the lm_head over every other position, which at
  // vocab 32768 is most of a short prompt's arithmetic.
  torch::Tensor forward_last(const torch::Tensor& idx, KVCache& kv_cache);

  int64_t estimate_flops() const;
  ParamCounts num_scaling_params() const;  // from the actual parameter tensors
  torch::Device get_device() const { return wte->weight.device(); }

  // (name, tensor) pairs in Python's state_dict order (parameters only; rotary tables are not saved).
  std::vector<std::pair<std::string, torch::Tensor>> state_dict() const;
  // Adopts each tensor (shape checked) with the checkpoint's dtype, moved to the model's device, as Python's
  // load_state_dict(assign=True). strict: missing or unexpected keys are errors.
  void load_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors, bool strict = true);

  // Naive batch-1 generation without a KV cache (nanochat/gpt.py GPT.generate): re-runs the whole sequence per token.
  std::vector<int64_t> generate(const std::vector<int64_t>& tokens, int64_t max_tokens, double temperature = 1.0,
                                int64_t top_k = 0, uint64_t seed = 42);

  GPTConfig config;
  // Training loss (targets, reduction "mean") through fused_linear_softcap_ce; false = the plain libtorch path.
  bool fused_loss = true;
  // One-token KV-cache steps on the CPU in fp32 through decode_step (nanochat/decode); false = the libtorch path.
  bool fused_decode = true;
  // --grad-checkpoint: each block keeps only its inputs in forward and recomputes itself in backward (activation
  // memory of one block instead of all of them, for about a third more compute).
  bool grad_checkpoint = false;
  int64_t padded_vocab = 0;
  std::vector<std::pair<int64_t, int64_t>> window_sizes;
  int64_t rotary_seq_len = 0;

  torch::Tensor resid_lambdas, x0_lambdas, smear_lambda, backout_lambda;
  torch::nn::ModuleDict transformer{nullptr};  // "wte", "h"
  TokenEmbedding wte{nullptr};
  torch::nn::ModuleList h{nullptr};
  std::vector<Block> blocks;
  CastLinear lm_head{nullptr}, smear_gate{nullptr};
  torch::nn::ModuleDict value_embeds{nullptr};  // "1", "3", ... (layers with has_ve)
  std::map<int64_t, TokenEmbedding> ve_by_layer;
  torch::Tensor rotary_cos,
      rotary_sin;  // buffers "cos"/"sin" [1, rotary_seq_len, 1, Dh/2] in the compute dtype (non-persistent buffers)

 private:
  void precompute_rotary();
  // The final normed residual stream [B, T, d] (everything before the lm_head).
  torch::Tensor hidden_states(const torch::Tensor& idx, KVCache* kv_cache);
  // softcap·tanh(lm_head(x) / softcap) cropped to vocab_size, fp32.
  torch::Tensor logits_from_hidden(const torch::Tensor& x);
};
TORCH_MODULE(GPT);

}  // namespace nanochat
