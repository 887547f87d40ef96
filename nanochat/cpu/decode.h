// decode: one KV-cache decoding step (one new token per row) on the CPU in fp32, written as plain loops over the
// model's weights instead of ~50 libtorch ops per layer. GPT::forward takes this path by itself when it applies.
//
//   if (decode_step_applies(model, idx, cache)) x = decode_step(model, idx, cache);  // [B, 1, d], final-normed
//
// At batch 1 a decode step reads every weight once (depth 4: 46 MB, depth 6: 92 MB) and does little arithmetic,
// so its speed is memory bandwidth plus a fixed cost per op. Through libtorch, dispatch, allocation and thread
// wake-ups for ~250 small ops cost about as much as streaming the weights; here each layer is one pass of loops
// and the matrix products stream each weight once (small_linear; BLAS gemm past kSmallLinearMaxRows rows). Larger
// batches gain too: attention reads the cache in place instead of copying every key and value per step. The math is
// GPT::forward's (nanochat/gpt.py) in the same order per element: results differ only by fp32 summation order
// (tests/unit/test_torch_decode.cpp compares the two step by step, and greedy tokens against the Python engine). Not
// covered (GPT::forward's generic path handles them): bf16/fp16 weights or cache, CUDA, autograd, T > 1. Packed
// bf16/int8 copies of the matrices (nanochat/cpu/pack_weights.h) are streamed in their place when present.
#pragma once

#include <torch/torch.h>

#include "nanochat/gpt.h"
#include "nanochat/kv_cache.h"

namespace nanochat {

// True when idx is [B, 1] int64, the model, its embeddings and the cache are fp32 on the CPU, no gradient is
// recorded, the cache holds at least B rows and each of rows [0, B) has room for one more position.
bool decode_step_applies(const GPTImpl& model, const torch::Tensor& idx, const KVCache& cache);

// Runs the blocks for idx [B, 1], row b at the cache's position for row b (rows may differ), writes this step's
// keys/values, sets the smear's previous embedding and advances rows [0, B) by one, as GPT::forward does. Returns the
// final-normed residual stream [B, 1, d] (the lm_head's input).
torch::Tensor decode_step(const GPTImpl& model, const torch::Tensor& idx, KVCache& cache);

}  // namespace nanochat
