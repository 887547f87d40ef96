// parallel: at::parallel_for for the files that split their loops with it (small_linear.cpp, decode.cpp).
//
//   #include "nanochat/cpu/parallel.h"   // instead of <ATen/Parallel.h>
//
// In a libtorch whose thread pool is OpenMP (PyPI's wheels), at::parallel_for is a header template that splits
// the work only in a file compiled with OpenMP and otherwise runs the whole range on the calling thread, silently:
// decoding ran on one core of two that way. CMakeLists.txt compiles these files with -fopenmp; this stops a build
// that does not.
#pragma once

#include <ATen/Parallel.h>

#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "this file splits loops with at::parallel_for: compile it with -fopenmp (CMakeLists.txt, OpenMP_CXX_FLAGS)"
#endif
