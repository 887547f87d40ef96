// small_linear: see small_linear.h.
#include "nanochat/small_linear.h"

#include <ATen/Parallel.h>

namespace nanochat {

namespace {

// 16 floats: one AVX-512 register, two AVX2 ones (GCC lowers the vector type to whatever the clone has).
typedef float Vec16 __attribute__((vector_size(64)));
constexpr int kLanes = 16;

typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));

// Unaligned load; a macro, not a function, because passing or returning Vec16 by value would differ in ABI
// between the clones (GCC warns).
#define NANOCHAT_LOAD16(dst, p) __builtin_memcpy(&(dst), (p), sizeof(Vec16))

// Sum of the 16 lanes as a tree (4 vector adds) rather than 15 dependent scalar adds.
__attribute__((always_inline)) inline float sum16(Vec16 v) {
  Vec8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  Vec4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// y[m, n] = dot(x[m, :], w[n, :]) for n in [n0, n1) and all M rows of x (M known at compile time so the M
// accumulators live in registers). Each 16-float piece of a weight row is loaded once and multiplied into every
// row of x (which stays in L1), so the weight streams from memory exactly once.
template <int M>
__attribute__((always_inline)) inline void dot_rows_m(const float* __restrict w, const float* __restrict x,
                                                      float* __restrict y, int64_t n0, int64_t n1, int64_t K,
                                                      int64_t N) {
  const int64_t K_vec = K / kLanes * kLanes;
  for (int64_t n = n0; n < n1; ++n) {
    const float* wn = w + n * K;
    Vec16 acc[M] = {};
    for (int64_t k = 0; k < K_vec; k += kLanes) {
      Vec16 wv, xv;
      NANOCHAT_LOAD16(wv, wn + k);
      for (int m = 0; m < M; ++m) {
        NANOCHAT_LOAD16(xv, x + m * K + k);
        acc[m] += wv * xv;
      }
    }
    for (int m = 0; m < M; ++m) {
      float sum = sum16(acc[m]);
      for (int64_t k = K_vec; k < K; ++k) sum += wn[k] * x[m * K + k];
      y[m * N + n] = sum;
    }
  }
}

// One clone per instruction set, chosen at load time; each inlines the M-specialized loops above.
__attribute__((target_clones("avx512f", "avx2", "default")))
void dot_rows(const float* w, const float* x, float* y, int64_t n0, int64_t n1, int64_t K, int64_t M, int64_t N) {
  static_assert(kSmallLinearMaxRows == 4, "dot_rows dispatches M = 1..4");
  switch (M) {
    case 1: return dot_rows_m<1>(w, x, y, n0, n1, K, N);
    case 2: return dot_rows_m<2>(w, x, y, n0, n1, K, N);
    case 3: return dot_rows_m<3>(w, x, y, n0, n1, K, N);
    case 4: return dot_rows_m<4>(w, x, y, n0, n1, K, N);
  }
}

}  // namespace

bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w) {
  if (!x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32) return false;
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || w.size(1) == 0) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  return x.numel() / w.size(1) <= kSmallLinearMaxRows;
}

torch::Tensor small_linear(const torch::Tensor& x_in, const torch::Tensor& w_in) {
  const int64_t K = w_in.size(1), N = w_in.size(0);
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor w = w_in.contiguous();
  const int64_t M = x.numel() / K;
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = N;
  torch::Tensor y = torch::empty(out_shape, x.options());
  const float* wp = w.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // ~64 KB of weights per task: big enough to amortize the fork, small enough to balance two cores on a 384-row
  // matrix.
  const int64_t grain = std::max<int64_t>(1, 16384 / K);
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { dot_rows(wp, xp, yp, n0, n1, K, M, N); });
  return y;
}

}  // namespace nanochat
