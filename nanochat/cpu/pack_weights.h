// pack_weights: the `--dtype` of the inference commands (sample, chat_cli, chat_web, infer_bench, base_eval) — the
// model's matrices stored in fewer bytes for the CPU decode kernels, activations and arithmetic staying fp32.
//
//   LoadedModel lm = load_model("sft", device, "eval");
//   pack_weights(*lm.model, "int8");   // float32 (as loaded: nothing to do) | bfloat16 | int8
//
// Decoding one token at batch 1 reads every weight once per step, so its speed is the bytes streamed (depth 6:
// 92 MB in fp32). bfloat16 halves them (round to nearest even); int8 quarters them, weight-only with one fp32 scale
// per output row (scale = max |w_row| / 127, q = round(w / scale)), the scheme llama.cpp's Q8_0 uses per block of 32.
// Packed: every matrix of attention and the MLP, and the lm_head (the largest, 384 x 32768 at depth 6). Not packed:
// the embedding tables (decoding reads one row of each per token) and the tiny gates and scalars.
// Each matrix's fp32 weight is replaced by exactly the values its packed copy stands for, so every path — a prompt's
// prefill through libtorch, batches past the kernel's rows through BLAS, decoding through small_linear — computes
// the same (rounded) model; the fp32 copy stays for those paths (memory: 1.5x with bfloat16, 1.25x with int8).
// What the rounding costs (greedy-token agreement, bits per byte): bench/RESULTS.md, "Packed weights".
// Not covered: CUDA (where NANOCHAT_DTYPE sets the compute dtype), training (nothing trains a packed model).
#pragma once

#include <string>
#include <vector>

#include "nanochat/gpt.h"

namespace nanochat {

// The names --dtype takes, for the flag's help and check.
inline const std::vector<std::string> kWeightDtypes = {"float32", "bfloat16", "int8"};

// Packs the model's matrices as `dtype` (one of kWeightDtypes; float32 leaves the model as it is) and prints one line
// saying what it packed and the bytes a decode step streams before and after. Fails with one line for another dtype
// name, a model that is not on the CPU, or one that is already packed.
void pack_weights(GPTImpl& model, const std::string& dtype);

}  // namespace nanochat
