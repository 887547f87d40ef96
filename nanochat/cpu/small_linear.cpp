// small_linear: see small_linear.h.
#include "nanochat/cpu/small_linear.h"

#include "nanochat/cpu/parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "nanochat/cpu/simd.h"
#include "nanochat/cpu/threads.h"

namespace nanochat {

namespace {

using c10::BFloat16;

template <typename W>
using DotRows = void (*)(const W*, const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);

}  // namespace

// The kernel once per instruction set (see small_linear_kernel.inc).
#if defined(__x86_64__)
// GCC 12 warns of its own AVX-512 intrinsics' undefined upper lanes (-Wmaybe-uninitialized): a known false alarm.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace small_linear_avx512 {
using Vec = simd::Vec16;
#define NANOCHAT_ISA 3
#include "nanochat/cpu/small_linear_kernel.inc"
#undef NANOCHAT_ISA
}  // namespace small_linear_avx512
#pragma GCC pop_options
#pragma GCC diagnostic pop
#pragma GCC push_options
#pragma GCC target("avx2")
namespace small_linear_avx2 {
using Vec = simd::Vec8;
#define NANOCHAT_ISA 2
#include "nanochat/cpu/small_linear_kernel.inc"
#undef NANOCHAT_ISA
}  // namespace small_linear_avx2
#pragma GCC pop_options
#endif
namespace small_linear_base {
using Vec = simd::Vec4;
#define NANOCHAT_ISA 1
#include "nanochat/cpu/small_linear_kernel.inc"
#undef NANOCHAT_ISA
}  // namespace small_linear_base

namespace {

// The widest kernel this CPU runs, picked once per weight type.
template <typename W>
DotRows<W> pick_dot_rows() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return small_linear_avx512::dot_rows<W>;
  if (__builtin_cpu_supports("avx2")) return small_linear_avx2::dot_rows<W>;
#endif
  return small_linear_base::dot_rows<W>;
}

template <typename W>
void linear_rows(const float* x, int64_t M, const W* w, const float* scale, int64_t N, int64_t K, float* y) {
  TORCH_CHECK(M >= 1 && M <= kSmallLinearMaxRows, "small_linear: ", M, " rows is outside 1..", kSmallLinearMaxRows);
  static const DotRows<W> kernel = pick_dot_rows<W>();
  // Tasks of at least min_task_bytes of weights. Waking a sleeping thread (a futex wake-up and a join, ~10 us) only
  // pays for itself on matrices of a few 100 KB; a spinning one (threads.h) already on a depth-6 model's 147 KB
  // int8 attention matrices: 64 KB tasks took a token from 2.96 to 2.52 ms there, and cost time when threads sleep.
  static const int64_t min_task_bytes = omp_threads_spin() ? 64 * 1024 : 256 * 1024;
  const int64_t grain = std::max<int64_t>(1, min_task_bytes / (int64_t(sizeof(W)) * K));
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { kernel(w, scale, x, y, n0, n1, K, M, N); });
}

}  // namespace

bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& scale) {
  if (!x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != torch::kFloat32) return false;
  if (w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || w.size(1) == 0) return false;
  switch (w.scalar_type()) {
    case torch::kFloat32:
    case torch::kBFloat16:
      if (scale.defined()) return false;
      break;
    case torch::kChar:
      if (!scale.defined() || !scale.device().is_cpu() || scale.scalar_type() != torch::kFloat32 ||
          scale.numel() != w.size(0))
        return false;
      break;
    default:
      return false;
  }
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  return x.numel() / w.size(1) <= kSmallLinearMaxRows;
}

void small_linear_into(const float* x, int64_t M, const float* w, int64_t N, int64_t K, float* y) {
  linear_rows(x, M, w, nullptr, N, K, y);
}
void small_linear_into(const float* x, int64_t M, const BFloat16* w, int64_t N, int64_t K, float* y) {
  linear_rows(x, M, w, nullptr, N, K, y);
}
void small_linear_into(const float* x, int64_t M, const int8_t* w, const float* scale, int64_t N, int64_t K,
                       float* y) {
  linear_rows(x, M, w, scale, N, K, y);
}

torch::Tensor small_linear(const torch::Tensor& x_in, const torch::Tensor& w_in, const torch::Tensor& scale_in) {
  const int64_t K = w_in.size(1), N = w_in.size(0);
  const torch::Tensor x = x_in.contiguous();
  const torch::Tensor w = w_in.contiguous();
  const int64_t M = x.numel() / K;
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = N;
  torch::Tensor y = torch::empty(out_shape, x.options());
  float* out = y.data_ptr<float>();
  switch (w.scalar_type()) {
    case torch::kBFloat16:
      small_linear_into(x.data_ptr<float>(), M, w.data_ptr<BFloat16>(), N, K, out);
      break;
    case torch::kChar: {
      const torch::Tensor scale = scale_in.contiguous();
      small_linear_into(x.data_ptr<float>(), M, w.data_ptr<int8_t>(), scale.data_ptr<float>(), N, K, out);
      break;
    }
    default:
      small_linear_into(x.data_ptr<float>(), M, w.data_ptr<float>(), N, K, out);
  }
  return y;
}

}  // namespace nanochat
