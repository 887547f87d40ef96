// fp8: FP8 training with tensorwise dynamic scaling (nanochat/fp8.py). Each converted CastLinear runs its three
// matmuls (output, grad_input, grad_weight) through at::_scaled_mm: inputs and weights quantized to e4m3, gradients
// to e5m2, one fp32 scale per tensor (fp8_max / amax). Master weights stay fp32; outputs come back in the input's
// dtype. base_train's --fp8 calls convert_to_float8_training; evaluation runs inside an Fp8Disabled scope (bf16),
// as nanochat's disable_fp8.
//
//   auto n = convert_to_float8_training(*model);   // depth 12: 72 of its 80 CastLinears
//   { Fp8Disabled plain(*model); evaluate_bpb(...); }
//
// Fast only on CUDA sm89+ (cuBLAS FP8); libtorch's CPU _scaled_mm computes the same products (the tests run there).
// The oracle is fp8_linear_reference: the same quantized operands, dequantized, through a plain fp32 matmul.
// Not covered: the rowwise recipe (nanochat rejects it too); the lm_head inside the fused loss (gpt.h fused_loss)
// stays in the compute dtype.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "nanochat/gpt.h"

namespace nanochat {

// (x quantized to `dtype`, the fp32 0-dim inverse scale _scaled_mm multiplies back): scale = fp8_max / max|x|,
// computed in fp64 as nanochat does, values saturated to ±fp8_max.
std::pair<torch::Tensor, torch::Tensor> to_fp8(const torch::Tensor& x, torch::ScalarType dtype);

// y = x · weightᵀ with all three matmuls in FP8. x [..., K] in the compute dtype, weight [N, K] (fp32 master).
// K and N must be multiples of 16 (cuBLAS), as convert_to_float8_training's filter guarantees.
torch::Tensor fp8_linear(const torch::Tensor& x, const torch::Tensor& weight);
// The same forward and gradients from dequantized fp8 operands and plain matmuls: fp8_linear's test oracle.
torch::Tensor fp8_linear_reference(const torch::Tensor& x, const torch::Tensor& weight);

// Marks every CastLinear that nanochat's filter admits (both dims multiples of 16, the smaller >= 128) for FP8.
// The lm_head is left out while the model trains through the fused loss (it never calls lm_head's forward).
struct Fp8Conversion {
  int64_t converted = 0, linear_layers = 0;
};
Fp8Conversion convert_to_float8_training(GPTImpl& model);

// Turns the converted layers back to the compute dtype for the scope's lifetime (nanochat's disable_fp8).
class Fp8Disabled {
 public:
  explicit Fp8Disabled(GPTImpl& model);
  ~Fp8Disabled();
  Fp8Disabled(const Fp8Disabled&) = delete;
  Fp8Disabled& operator=(const Fp8Disabled&) = delete;

 private:
  std::vector<CastLinearImpl*> layers_;
};

}  // namespace nanochat
