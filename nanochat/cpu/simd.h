// simd: 16-float vector helpers for the hand-written CPU kernels (small_linear, decode). GCC's vector types
// lower to one AVX-512 register, two AVX2 ones or four SSE ones, whichever the enclosing function is compiled
// for, so a kernel written once is cloned per instruction set with target_clones and picked at load time.
//
//   __attribute__((target_clones("avx512f", "avx2", "default"))) void kernel(...) { ... dot16(a, b, n) ... }
//
// Everything here is always_inline and must be called only from such a clone: passing or returning a vector by
// value across a call would differ in ABI between the clones (GCC warns).
#pragma once

#include <cstdint>

namespace nanochat::simd {

typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec4 __attribute__((vector_size(16)));
constexpr int kLanes = 16;

// Unaligned load; a macro so that no vector is passed by value.
#define NANOCHAT_LOAD16(dst, p) __builtin_memcpy(&(dst), (p), sizeof(::nanochat::simd::Vec16))

// Sum of the 16 lanes as a tree (4 vector adds) rather than 15 dependent scalar adds.
__attribute__((always_inline)) inline float sum16(Vec16 v) {
  Vec8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
           __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  Vec4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// Σ a[i]·b[i] over n floats, 16 lanes at a time plus a scalar tail.
__attribute__((always_inline)) inline float dot16(const float* __restrict a, const float* __restrict b, int64_t n) {
  Vec16 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Vec16 va, vb;
    NANOCHAT_LOAD16(va, a + i);
    NANOCHAT_LOAD16(vb, b + i);
    acc += va * vb;
  }
  float s = sum16(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace nanochat::simd
