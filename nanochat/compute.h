// compute: the libtorch half of nanochat's common.py — device autodetection, the global compute dtype
// (NANOCHAT_DTYPE, else bf16 on CUDA SM80+, else fp32) and compute_init / compute_cleanup.
// Distributed process groups (c10d) join here when the multi-process work lands.
#pragma once

#include <string>

#include <torch/torch.h>

// libtorch API differences between Debian's 1.13 (CPU) and 2.x (CUDA builds) are guarded with this.
#define NANOCHAT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace nanochat {

// "cuda" if available, else "cpu" (prints "Autodetected device type: X" on rank 0).
std::string autodetect_device_type();

// The dtype the model computes in; decided once, on first use (SPEC §2.1).
torch::Dtype compute_dtype();
// Why compute_dtype() is what it is, for the log.
std::string compute_dtype_reason();

struct ComputeContext {
  bool ddp = false;
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  torch::Device device = torch::kCPU;
};

// Validates device_type ("cuda" | "cpu" | "" for autodetect), seeds the global RNG with 42, enables TF32 on CUDA.
ComputeContext compute_init(const std::string& device_type);
void compute_cleanup();

}  // namespace nanochat
