// compute: the libtorch half of nanochat's common.py — device autodetection, the global compute dtype
// (NANOCHAT_DTYPE, else bf16 on CUDA SM80+, else fp32), compute_init / compute_cleanup and the process group.
//
// Multi-process runs take their ranks from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), as `nanochat launch` or `torchrun --no-python` set it. With WORLD_SIZE > 1 compute_init meets the
// other ranks at a c10d TCPStore (rank 0 hosts it at MASTER_ADDR:MASTER_PORT) and builds a ProcessGroupGloo on CPU
// or a ProcessGroupNCCL on CUDA (device cuda:LOCAL_RANK). Every collective gives up after NANOCHAT_DIST_TIMEOUT
// seconds (default 600), so a rank that died or hangs ends the job with an error instead of a hang.
//
//   ComputeContext ctx = compute_init("");       // single process: no group, rank 0 of 1
//   all_reduce(t, Reduce::sum);                   // no-ops when single process
//   double n = all_reduce(count, Reduce::sum);
//
// The group itself (for code that issues its own collectives) is process_group(); include
// <torch/csrc/distributed/c10d/ProcessGroup.hpp> where it is used. Not covered: MPS, elastic restarts.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "nanochat/common.h"

#include <torch/torch.h>

namespace c10d {
class ProcessGroup;
}

namespace nanochat {

// "cuda" if available, else "cpu" (prints "Autodetected device type: X" on rank 0).
std::string autodetect_device_type();

// The dtype the model computes in; decided once, on first use (nanochat/common.py _detect_compute_dtype).
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

// Validates device_type ("cuda" | "cpu" | "" for autodetect), seeds the global RNG with 42, enables TF32 on CUDA,
// and joins the process group when WORLD_SIZE > 1 (Error with one line when the environment is incomplete or the
// rendezvous fails).
ComputeContext compute_init(const std::string& device_type);
// Leaves the process group (after a barrier, so no rank exits while another still waits on it).
void compute_cleanup();

// What `nanochat --version` prints: the libtorch version, whether CUDA was compiled in (for which architectures),
// and the device a run would use.
std::string version_report();

// The process group of this run; null when single process.
c10::intrusive_ptr<c10d::ProcessGroup> process_group();
// True when running with a process group (WORLD_SIZE > 1).
bool is_distributed();
// This process's rank and the number of ranks (0 and 1 when single process).
int dist_rank();
int dist_world_size();
// NANOCHAT_DIST_TIMEOUT (seconds, default 600): how long a collective waits for the other ranks.
std::chrono::milliseconds dist_timeout();

// Runs code that issues collectives of its own (the distributed optimizer's step): a libtorch error from them
// becomes the one-line "rank N lost its process group during <what> ..." Error; our own Errors pass through.
[[noreturn]] void collective_failed(const char* what, const std::exception& e);
template <typename F>
void with_collectives(const char* what, F&& f) {
  if (!is_distributed()) return f();
  try {
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(what, e);
  }
}

enum class Reduce { sum, avg, max, min };
// In place across ranks; identity when single process. Errors from the group become one-line Errors.
void all_reduce(torch::Tensor& t, Reduce op = Reduce::sum);
double all_reduce(double v, Reduce op = Reduce::sum);
void all_reduce(std::vector<float>& v, Reduce op = Reduce::sum);
void broadcast(torch::Tensor& t, int root = 0);
void barrier();
// Gives every trainable parameter without a gradient a zero one: the distributed optimizer (optim.h) averages
// every gradient on every rank, so a rank that had nothing to backpropagate must still bring zeros.
void zero_missing_grads(const std::vector<torch::Tensor>& params);

}  // namespace nanochat
