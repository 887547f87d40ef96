// flash_attention: causal attention with a left sliding window and grouped-query heads, in FA3's layout
// [B, T, heads, Dh], for training (flash_attn_func) and for inference against a KV cache
// (flash_attn_with_kvcache). Semantics are nanochat's SDPA fallback (nanochat/flash_attention.py _sdpa_attention):
// query row r sits at absolute position p = (Tk - Tq) + r and may attend key c iff c <= p and (window < 0 or p - c <=
// window).
//
//   auto y = flash_attn_func(q, k, v, /*window_left=*/128);           // q [B,T,H,D], k/v [B,T,Hkv,D]
//   auto y = flash_attn_with_kvcache(q, k_cache, v_cache, k, v, pos, window);  // writes k/v into the cache
//
// CPU path: a blocked softmax attention in which each block of queries multiplies only against the keys its
// causal window can reach, so sliding-window layers cost O(T·w) rather than O(T²), and the causal upper
// triangle is skipped; it is one autograd node with a hand-written blocked backward (no full-size slice gradients).
// On CUDA: libtorch's FlashAttention-2 kernels with the window passed natively (bf16/fp16); SDPA with a mask where
// those kernels do not run (fp32, a GPU before sm80), said once in the log.
// attention_reference() is the plain full-matrix masked softmax; it is the oracle the tests compare against.
// Not covered: FA3 kernels, fp8, several new tokens per row when rows are at different positions.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace nanochat {

// Causal self-attention with a left window (window_left < 0 means unlimited). q [B,T,H,D], k/v [B,T,Hkv,D],
// H % Hkv == 0 (GQA: query head h uses kv head h / (H/Hkv)). Returns [B,T,H,D]. Differentiable.
torch::Tensor flash_attn_func(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              int64_t window_left);

// Inference: writes k/v ([B,Tn,Hkv,D]) into k_cache/v_cache ([B,Tmax,Hkv,D]) at rows [pos, pos+Tn) in place,
// then attends q ([B,Tn,H,D]) over cache rows [0, pos+Tn). The caller advances the position.
torch::Tensor flash_attn_with_kvcache(const torch::Tensor& q, const torch::Tensor& k_cache,
                                      const torch::Tensor& v_cache, const torch::Tensor& k, const torch::Tensor& v,
                                      int64_t pos, int64_t window_left);

// Inference for rows at different positions (continuous batching), one token each: writes row b's k/v ([B,1,Hkv,D])
// at cache row positions[b] (int64 [B], on q's device), then attends row b's query over its keys [0, positions[b]]
// within the window. max_pos is the largest position, passed from the host so that no device sync is needed.
// The caller advances the positions.
torch::Tensor flash_attn_with_kvcache_rows(const torch::Tensor& q, const torch::Tensor& k_cache,
                                           const torch::Tensor& v_cache, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& positions, int64_t max_pos, int64_t window_left);

// General form used by both: q [B,Tq,H,D] against k/v [B,Tk,Hkv,D] with Tk >= Tq (queries are the last Tq
// positions). Blocked; never materializes key blocks the window masks out.
torch::Tensor windowed_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 int64_t window_left);

// The oracle: full [Tq, Tk] scores, boolean mask, softmax, in the same layout and semantics.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  int64_t window_left);

}  // namespace nanochat
