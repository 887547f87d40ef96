// small_linear: see small_linear.h.
#include "nanochat/cpu/small_linear.h"

#include <ATen/Parallel.h>

#include "nanochat/cpu/simd.h"

namespace nanochat {

namespace {

using simd::Vec16;
using simd::Vec4;
using simd::Vec8;

// y[m, n] = dot(x[m, :], w[n, :]) for n in [n0, n1) and all M rows of x (M known at compile time so the M
// accumulators live in registers). Each V-wide piece of a weight row is loaded once and multiplied into every
// row of x (which stays in L1), so the weight streams from memory exactly once. V is the register width of the
// instruction set the caller is compiled for: a vector wider than the registers is lowered through the stack
// (GCC spills it every iteration), which made the 16-lane kernel 8x slower than the fp32 GEMM on AVX2-only CPUs.
template <int M, typename V>
__attribute__((always_inline)) inline void dot_rows_m(const float* __restrict w, const float* __restrict x,
                                                      float* __restrict y, int64_t n0, int64_t n1, int64_t K,
                                                      int64_t N) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t K_vec = K / L * L;
  for (int64_t n = n0; n < n1; ++n) {
    const float* wn = w + n * K;
    V acc[M] = {};
    for (int64_t k = 0; k < K_vec; k += L) {
      V wv, xv;
      __builtin_memcpy(&wv, wn + k, sizeof(V));
      for (int m = 0; m < M; ++m) {
        __builtin_memcpy(&xv, x + m * K + k, sizeof(V));
        acc[m] += wv * xv;
      }
    }
    for (int m = 0; m < M; ++m) {
      float sum = 0;
      for (int64_t l = 0; l < L; ++l) sum += acc[m][l];
      for (int64_t k = K_vec; k < K; ++k) sum += wn[k] * x[m * K + k];
      y[m * N + n] = sum;
    }
  }
}

template <typename V>
__attribute__((always_inline)) inline void dot_rows_v(const float* w, const float* x, float* y, int64_t n0, int64_t n1,
                                                      int64_t K, int64_t M, int64_t N) {
  static_assert(kSmallLinearMaxRows == 4, "dot_rows dispatches M = 1..4");
  switch (M) {
    case 1:
      return dot_rows_m<1, V>(w, x, y, n0, n1, K, N);
    case 2:
      return dot_rows_m<2, V>(w, x, y, n0, n1, K, N);
    case 3:
      return dot_rows_m<3, V>(w, x, y, n0, n1, K, N);
    case 4:
      return dot_rows_m<4, V>(w, x, y, n0, n1, K, N);
  }
}

using DotRows = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void dot_rows_avx512(const float* w, const float* x, float* y, int64_t n0,
                                                        int64_t n1, int64_t K, int64_t M, int64_t N) {
  dot_rows_v<Vec16>(w, x, y, n0, n1, K, M, N);
}
__attribute__((target("avx2"))) void dot_rows_avx2(const float* w, const float* x, float* y, int64_t n0, int64_t n1,
                                                   int64_t K, int64_t M, int64_t N) {
  dot_rows_v<Vec8>(w, x, y, n0, n1, K, M, N);
}
#endif
void dot_rows_base(const float* w, const float* x, float* y, int64_t n0, int64_t n1, int64_t K, int64_t M, int64_t N) {
  dot_rows_v<Vec4>(w, x, y, n0, n1, K, M, N);
}

// The widest kernel this CPU runs, picked once.
DotRows pick_dot_rows() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return dot_rows_avx512;
  if (__builtin_cpu_supports("avx2")) return dot_rows_avx2;
#endif
  return dot_rows_base;
}

void dot_rows(const float* w, const float* x, float* y, int64_t n0, int64_t n1, int64_t K, int64_t M, int64_t N) {
  static const DotRows kernel = pick_dot_rows();
  kernel(w, x, y, n0, n1, K, M, N);
}

}  // namespace

bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w) {
  if (!x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32) return false;
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || w.size(1) == 0) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  return x.numel() / w.size(1) <= kSmallLinearMaxRows;
}

void small_linear_into(const float* x, int64_t M, const float* w, int64_t N, int64_t K, float* y) {
  TORCH_CHECK(M >= 1 && M <= kSmallLinearMaxRows, "small_linear: ", M, " rows is outside 1..", kSmallLinearMaxRows);
  // Tasks of at least kMinTaskBytes of weights: one core alone streams ~27 GB/s of the ~32 GB/s two reach here,
  // so a second thread only pays for itself (a futex wake-up and a join, ~10 us) on matrices of a few 100 KB+.
  constexpr int64_t kMinTaskBytes = 256 * 1024;
  const int64_t grain = std::max<int64_t>(1, kMinTaskBytes / (4 * K));
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { dot_rows(w, x, y, n0, n1, K, M, N); });
}

torch::Tensor small_linear(const torch::Tensor& x_in, const torch::Tensor& w_in) {
  const int64_t K = w_in.size(1), N = w_in.size(0);
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor w = w_in.contiguous();
  const int64_t M = x.numel() / K;
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = N;
  torch::Tensor y = torch::empty(out_shape, x.options());
  small_linear_into(x.data_ptr<float>(), M, w.data_ptr<float>(), N, K, y.data_ptr<float>());
  return y;
}

}  // namespace nanochat
