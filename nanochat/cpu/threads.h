// threads: how libtorch's CPU thread pool behaves.
//
//   use_passive_omp_wait(argc, argv);   // first thing in a training subcommand (may re-execute the program once)
//   use_decode_omp_wait(argc, argv);    // the same in a subcommand that decodes tokens (sample, chat_*, ...)
//   configure_cpu_threads();            // before building the model
//
// Thread count: OMP_NUM_THREADS (or NANOCHAT_NUM_THREADS) wins; otherwise every hardware thread the process may run
// on, since libtorch's default (physical cores found by OpenMP) can be 1 inside containers that hide the topology,
// divided among the ranks on this node (LOCAL_WORLD_SIZE, set by nanochat launch and torchrun; at least one each).
//
// Waiting: OpenMP threads spin between parallel regions by default. On a machine whose cores are shared with other
// work that spinning turns into contention: a depth-2 training step measured 280 ms with 1 thread, 300 ms with 2
// passive threads and 2.4-14 s with 2 spinning threads while other jobs kept the 2 cores busy. libgomp reads
// OMP_WAIT_POLICY only when it loads, so when neither it nor GOMP_SPINCOUNT is set the program re-executes itself
// once with OMP_WAIT_POLICY=PASSIVE. Set OMP_WAIT_POLICY=ACTIVE to keep spinning on a machine of your own.
// Decoding is the other case: a depth-6 step is ~40 matrix-vector products of 10-100 us each, back to back, and a
// sleeping thread's futex wake-up for each cost more than splitting them saved (depth 6, int8 weights: 3.7 ms a
// token sleeping, 2.8 ms spinning). Decoding commands therefore spin GOMP_SPINCOUNT=10000 pauses first (0.3 ms on an EPYC,
// about 1 ms where a pause is slower), long enough to span a step's gaps, short enough to sleep between requests.
//
// Memory: glibc serves big blocks with mmap and returns them on free, so every training step faulted in and
// zeroed its activations again (about 1.5 s of system time per depth-6 step). configure_cpu_threads keeps blocks
// up to 1 GiB in the heap and freed memory mapped, so steps reuse it.
#pragma once

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <cstdlib>
#include <string>
#include <thread>

#include <torch/torch.h>

namespace nanochat {

namespace detail {
// Re-executes the program once with `var`=`value` unless the user chose a wait policy (or it already did).
inline void reexec_with_omp_wait(int argc, char** argv, const char* var, const char* value) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") || std::getenv("NANOCHAT_NO_REEXEC")) return;
  setenv(var, value, 1);
  setenv("NANOCHAT_NO_REEXEC", "1", 1);
  std::vector<char*> args;
  args.push_back(const_cast<char*>("nanochat"));
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv("/proc/self/exe", args.data());
  // exec failed (no /proc): go on with the default policy.
}
}  // namespace detail

// argv as the subcommand receives it (argv[0] = the subcommand name).
inline void use_passive_omp_wait(int argc, char** argv) {
  detail::reexec_with_omp_wait(argc, argv, "OMP_WAIT_POLICY", "PASSIVE");
}
inline void use_decode_omp_wait(int argc, char** argv) {
  detail::reexec_with_omp_wait(argc, argv, "GOMP_SPINCOUNT", "10000");
}

// Whether idle OpenMP threads spin before they sleep (libgomp's default, and use_decode_omp_wait's), which makes
// waking one for a small piece of work cheap.
inline bool omp_threads_spin() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (policy && (std::string(policy) == "PASSIVE" || std::string(policy) == "passive")) return false;
  const char* count = std::getenv("GOMP_SPINCOUNT");
  return !(count && std::string(count) == "0");
}

inline int configure_cpu_threads() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  for (const char* var : {"NANOCHAT_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* v = std::getenv(var); v && *v) {
      int n = std::atoi(v);
      if (n > 0) {
        torch::set_num_threads(n);
        return n;
      }
    }
  }
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = int(std::thread::hardware_concurrency());
  if (const char* v = std::getenv("LOCAL_WORLD_SIZE"); v && std::atoi(v) > 1) n = std::max(1, n / std::atoi(v));
  if (n > 0) torch::set_num_threads(n);
  return torch::get_num_threads();
}

}  // namespace nanochat
