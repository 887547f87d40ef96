// simd: the fp32 vector types of the hand-written CPU kernels (small_linear, decode). GCC's vector types lower to
// one register of the instruction set the enclosing function is compiled for, so a kernel is written once as a
// template over the vector type and instantiated in one function per instruction set, picked at run time:
//
//   template <typename V> __attribute__((always_inline)) inline void kernel_v(...) { V acc = {}; ... }
//   __attribute__((target("avx2"))) void kernel_avx2(...) { kernel_v<simd::Vec8>(...); }
//
// Use the vector as wide as the registers: a wider one is lowered through the stack (GCC spills it every iteration:
// a Vec16 in an AVX2 function ran 8x slower than the fp32 GEMM). Templates are always_inline and called only from such
// functions: passing or returning a vector by value across a call differs in ABI between instruction sets.
#pragma once

namespace nanochat::simd {

typedef float Vec16 __attribute__((vector_size(64)));  // AVX-512
typedef float Vec8 __attribute__((vector_size(32)));   // AVX2
typedef float Vec4 __attribute__((vector_size(16)));   // baseline x86-64 (SSE2)

}  // namespace nanochat::simd
