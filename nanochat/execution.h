// execution: run Python code in a sandboxed python3 child process (nanochat's execute_code, used by HumanEval).
//   auto r = nanochat::execute_code("print('hello world')");   // r.success, r.stdout_text == "hello world\n"
// What it does: fork a small supervisor in a new process group, which makes the namespaces and starts python3
// (-I -B) as the first process of its own PID namespace, so that when it exits the kernel kills everything it
// started, setsid() or not; with rlimits (address space / data / stack = max_memory_bytes, CPU time, processes,
// file size 16 MiB, no core files), a scrubbed environment (OMP_NUM_THREADS=1 ...), a fresh temporary working
// directory removed afterwards, stdin from /dev/null, stdout/stderr captured through pipes and capped at 1 MiB
// each (the rest is drained and dropped), and a wall-clock deadline of timeout + 1 s after which the whole group is
// killed (python3 also dies with its supervisor). In a private mount namespace every mount is remounted read-only
// except the working directory. When started as root the child drops to uid/gid nobody (so the process limit
// applies and root-only files are out of reach); unshare(CLONE_NEWNET) leaves the code without a network. Without
// root these come from a user namespace where the kernel allows one. Before the user code, a Python prelude
// disables what nanochat's reliability_guard disables (os.kill/fork/system/remove..., shutil.rmtree,
// subprocess.Popen, exit/quit/help, importing resource/psutil/...), plus the calls that would leave the process
// group (setsid, setpgid, exec*, posix_spawn*), and arms a timer of `timeout` seconds.
// The verdict is python3's exit status as the supervisor saw it: the prelude ends with one of four statuses drawn
// at random for the run (success, timeout, MemoryError, error), so code that writes a fake verdict to some fd or
// exits early does not pass; the supervisor reports on a pipe python3 never holds. The first run in a process
// logs one line saying which protections this machine allowed.
// Unlike nanochat, stdout/stderr are returned also when the code fails or times out (nanochat returns "" then).
// Not covered: this is not a security sandbox — no seccomp; code that digs the prelude's statuses out of its own
// interpreter (frames, memory) can still forge a success; without namespaces (no root, no user namespaces) the code
// can open sockets, write where uid nobody may, and a setsid() child can outlive the run.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace nanochat {

struct ExecutionResult {
  bool success = false;  // the code ran to completion
  std::string stdout_text, stderr_text;
  std::optional<std::string> error;  // None in Python when nothing went wrong
  bool timeout = false;
  bool memory_exceeded = false;
  bool stdout_truncated = false, stderr_truncated = false;  // more than kExecOutputCap bytes were written
  bool network_isolated = false;                            // the child ran in its own (empty) network namespace
};

inline constexpr size_t kExecOutputCap = 1 << 20;           // per stream
inline constexpr size_t kExecDefaultMemory = 256ull << 20;  // RLIMIT_AS / DATA / STACK
inline constexpr size_t kExecFileSizeLimit = 16ull << 20;   // RLIMIT_FSIZE
inline constexpr int kExecMaxProcesses = 64;                // RLIMIT_NPROC (per user; not enforced for root)

// Runs `code` as a Python program (exec'd with an empty globals dict, as nanochat does). Thread-safe: callers may
// run several at once. max_memory_bytes = 0 sets no memory limit. Fails with nanochat::Error only if no python3
// interpreter can be found or the sandbox cannot be set up (temp dir, pipes, fork).
ExecutionResult execute_code(const std::string& code, double timeout_s = 5.0,
                             size_t max_memory_bytes = kExecDefaultMemory);

// The interpreter execute_code runs: $NANOCHAT_PYTHON, else /usr/bin/python3, else python3 on PATH.
std::string python_interpreter();

}  // namespace nanochat
