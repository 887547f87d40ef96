// small_linear: y = x · Wᵀ for a few rows of x on the CPU, the shape of every matmul in KV-cache decoding.
//
//   if (small_linear_applies(x, w)) y = small_linear(x, w);   // else torch::linear(x, w)
//
// Decoding one token per row turns each linear layer into a matrix-vector product that reads the whole weight
// once per step, so its speed is the memory bandwidth it reaches. libtorch 1.13 hands these to BLAS gemv,
// which reaches ~5 GB/s here; this kernel streams each weight row once for all rows of x, splits the output
// features across threads and is compiled for AVX-512 / AVX2 / baseline x86-64 (picked at run time), reaching
// several times that. Results differ from BLAS only in summation order (fp32 rounding).
// Not covered: bf16/fp16 weights, autograd (callers use it only when no gradient is needed), CUDA.
#pragma once

#include <torch/torch.h>

namespace nanochat {

// Rows of x up to which the kernel beats BLAS: measured with bench/bench_decode on an idle 2-core AVX-512 machine,
// it is faster at 1, 2 and 4 rows (1.7x for the 384x32768 lm_head at 1 row) and slower at 8, where the work turns
// from streaming weights into arithmetic that OpenBLAS's gemm does better.
constexpr int64_t kSmallLinearMaxRows = 4;

// True when x [..., K] and w [N, K] are fp32 CPU tensors, x has at most kSmallLinearMaxRows rows, and no
// gradient is being recorded through them.
bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w);

// x [..., K], w [N, K] → [..., N]; requires small_linear_applies(x, w).
torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w);

// The same on raw contiguous fp32 buffers, for callers that already hold them (the fused decode step):
// y[M, N] = x[M, K] · w[N, K]ᵀ with 1 <= M <= kSmallLinearMaxRows. Matrices too small to repay waking another
// thread run on the calling thread only.
void small_linear_into(const float* x, int64_t M, const float* w, int64_t N, int64_t K, float* y);

}  // namespace nanochat
