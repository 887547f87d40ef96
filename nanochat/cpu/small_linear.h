// small_linear: y = x · Wᵀ for a few rows of x on the CPU, the shape of every matmul in KV-cache decoding.
//
//   if (small_linear_applies(x, w)) y = small_linear(x, w);   // else torch::linear(x, w)
//   y = small_linear(x, w_int8, scale);                        // W = w_int8 · scale[:, None] (pack_weights)
//
// Decoding one token per row turns each linear layer into a matrix-vector product that reads the whole weight
// once per step, so its speed is the memory bandwidth it reaches. libtorch 1.13 hands these to BLAS gemv,
// which reaches ~5 GB/s here; this kernel streams each weight row once for all rows of x, splits the output
// features across threads and is compiled for AVX-512 / AVX2 / baseline x86-64 (picked at run time), reaching
// several times that. Results differ from BLAS only in summation order (fp32 rounding).
// The weight may also be stored in fewer bytes — bf16, or int8 with one fp32 scale per output row — and is widened
// to fp32 in registers: half or a quarter of the bytes to stream (nanochat/cpu/pack_weights.h makes such copies).
// x and the arithmetic stay fp32. Not covered: autograd (callers use it only when no gradient is needed), CUDA.
#pragma once

#include <c10/util/BFloat16.h>
#include <torch/torch.h>

namespace nanochat {

// Rows of x up to which the kernel beats BLAS: measured with bench/bench_decode on an idle 2-core AVX-512 machine,
// it is faster at 1, 2 and 4 rows (1.7x for the 384x32768 lm_head at 1 row) and slower at 8, where the work turns
// from streaming weights into arithmetic that OpenBLAS's gemm does better.
constexpr int64_t kSmallLinearMaxRows = 4;

// True when x [..., K] is an fp32 CPU tensor with at most kSmallLinearMaxRows rows, w [N, K] is on the CPU and
// fp32, bf16, or int8 with scale [N] fp32 (scale is given exactly for int8), and no gradient is being recorded.
bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scale = {});

// x [..., K], w [N, K] (and scale [N] for int8) → [..., N]; requires small_linear_applies(x, w, scale).
torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scale = {});

// The same on raw contiguous buffers, for callers that already hold them (the fused decode step):
// y[M, N] = x[M, K] · w[N, K]ᵀ with 1 <= M <= kSmallLinearMaxRows (int8: times scale[n] for column n). Matrices too
// small to repay waking another thread run on the calling thread only.
void small_linear_into(const float* x, int64_t M, const float* w, int64_t N, int64_t K, float* y);
void small_linear_into(const float* x, int64_t M, const c10::BFloat16* w, int64_t N, int64_t K, float* y);
void small_linear_into(const float* x, int64_t M, const int8_t* w, const float* scale, int64_t N, int64_t K,
                       float* y);

}  // namespace nanochat
