// base_common: what base_train and base_eval share — the sample prompts, the banner, the device name for the
// peak-FLOPS table, peak memory, dtype names. Header-only; the scripts include it.
#pragma once

#include <sys/resource.h>

#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include "nanochat/common.h"
#include "nanochat/gpt.h"
#include "nanochat/formats/pyjson.h"
#include "nanochat/report.h"

#include <unistd.h>

#ifdef NANOCHAT_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace nanochat {

// The prompts nanochat continues greedily to show what a base model knows.
inline constexpr const char* kSamplePrompts[] = {
    "The capital of France is",
    "The chemical symbol of gold is",
    "If yesterday was Friday, then tomorrow will be",
    "The opposite of hot is",
    "The planets of the solar system are:",
    "My favorite color is",
    "If 5*x + 3 = 13, then x is",
};

inline void print_banner() {
  print0(
      "\n"
      "  _ __   __ _ _ __   ___   ___| |__   __ _| |_ \n"
      " | '_ \\ / _` | '_ \\ / _ \\ / __| '_ \\ / _` | __|\n"
      " | | | | (_| | | | | (_) | (__| | | | (_| | |_ \n"
      " |_| |_|\\__,_|_| |_|\\___/ \\___|_| |_|\\__,_|\\__|   C++ / libtorch\n");
}

// Python's str(dtype): "torch.float32", ...
inline std::string dtype_name(torch::Dtype d) {
  switch (d) {
    case torch::kFloat32:
      return "torch.float32";
    case torch::kBFloat16:
      return "torch.bfloat16";
    case torch::kFloat16:
      return "torch.float16";
    default:
      return std::string("torch.") + c10::toString(d);
  }
}

// The CUDA device's name as nvidia-smi reports it (the peak-FLOPS table matches substrings of it).
inline std::string cuda_device_name(int local_rank) {
#ifdef NANOCHAT_CUDA
  // The driver's own name (the same string nvidia-smi prints), also where nvidia-smi is not installed.
  if (torch::cuda::is_available() && local_rank < int(torch::cuda::device_count()))
    return at::cuda::getDeviceProperties(local_rank)->name;
#endif
  GpuInfo g = query_gpus();
  if (g.names.empty()) return "unknown CUDA device";
  return g.names[size_t(local_rank) < g.names.size() ? size_t(local_rank) : 0];
}

// NANOCHAT_PEAK_FLOPS=<flop/s> replaces the table's peak, e.g. to see an MFU on a CPU (whose peak is +inf).
inline double peak_flops_override(double peak) {
  if (const char* v = std::getenv("NANOCHAT_PEAK_FLOPS"); v && *v) {
    char* end = nullptr;
    double x = std::strtod(v, &end);
    if (!end || *end || !(x > 0)) fail("NANOCHAT_PEAK_FLOPS={} is not a positive number of FLOP/s", v);
    print0f("Peak FLOPS set via NANOCHAT_PEAK_FLOPS: {:.2e}", x);
    return x;
  }
  return peak;
}

// Peak memory in bytes: the CUDA caching allocator's peak on GPUs; the process's peak resident set on the CPU
// (where Python nanochat prints 0, this tells how much RAM the run needed).
inline double peak_memory_bytes(const torch::Device& device) {
#ifdef NANOCHAT_CUDA
  if (device.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return double(stats.allocated_bytes[0].peak);
  }
#endif
  if (device.is_cuda()) return 0;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) * 1024.0;
}

// The memory a run on `device` can use at most: the GPU's total memory, or the machine's physical memory.
inline double device_memory_bytes(const torch::Device& device) {
#ifdef NANOCHAT_CUDA
  if (device.is_cuda())
    return double(at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->totalGlobalMem);
#endif
  return double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
}

}  // namespace nanochat
