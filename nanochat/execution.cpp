// execution: see execution.h. The parent prepares everything (temp dir, pipes, the code in a memfd, argv, env)
// before fork, so the child only makes async-signal-safe calls until execve — safe from a multi-threaded program.
#include "nanochat/execution.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "nanochat/common.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

// The prelude python3 runs before the user code. It reads the code from fd 3, disables the destructive calls
// (the list nanochat's reliability_guard uses, plus the ones that would leave the process group), runs the code
// under a real-time timer with an empty globals dict, and writes a JSON verdict to fd 4.
const char* kPrelude = R"PY(
import builtins, faulthandler, io, json, os, signal, sys
_read, _write, _close, _exit, _dumps = os.read, os.write, os.close, os._exit, json.dumps
_parts = []
while True:
    _b = _read(3, 65536)
    if not _b:
        break
    _parts.append(_b)
_close(3)
_src = b"".join(_parts).decode("utf-8", "replace")
_timeout = float(sys.argv[1])
_verdict = {"success": False, "timeout": False, "memory_exceeded": False, "error": None}

class _TimedOut(Exception):
    pass

def _on_alarm(signum, frame):
    raise _TimedOut("Timed out!")

class _NoInput(io.StringIO):
    def read(self, *args, **kwargs): raise IOError
    def readline(self, *args, **kwargs): raise IOError
    def readlines(self, *args, **kwargs): raise IOError
    def readable(self, *args, **kwargs): return False

def _guard():
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "killpg", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
                 "fork", "forkpty", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
                 "setsid", "setpgid", "setpgrp", "posix_spawn", "posix_spawnp", "popen",
                 "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
                 "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"):
        setattr(os, name, None)
    import shutil, subprocess
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None

try:
    sys.stdout.reconfigure(errors="backslashreplace")
    sys.stderr.reconfigure(errors="backslashreplace")
except Exception:
    pass
sys.stdin = _NoInput()
_guard()
try:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, _timeout)
    try:
        exec(_src, {})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    _verdict["success"] = True
except _TimedOut:
    _verdict["timeout"] = True
    _verdict["error"] = "Execution timed out"
except MemoryError as e:
    _verdict["memory_exceeded"] = True
    _verdict["error"] = f"Memory limit exceeded: {e}"
except BaseException as e:
    _verdict["error"] = f"{type(e).__name__}: {e}"
for _s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
    try:
        _s.flush()
    except BaseException:
        pass
_write(4, _dumps(_verdict).encode())
_exit(0)
)PY";

constexpr uid_t kNobody = 65534;

bool executable(const std::string& p) { return !p.empty() && access(p.c_str(), X_OK) == 0; }

// Removes the temp dir even if the code made parts of it read-only.
void remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec2);
  }
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(dir, ec);
}

void write_str(int fd, const char* s) {
  ssize_t r = write(fd, s, strlen(s));
  (void)r;
}

void set_limit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit rl;
  rl.rlim_cur = soft;
  rl.rlim_max = hard;
  setrlimit(resource, &rl);
}

// Runs in the forked child: only async-signal-safe calls. Never returns.
[[noreturn]] void child_main(const char* python, char* const argv[], char* const envp[], const char* workdir,
                             int devnull, int out_w, int err_w, int code_fd, int res_w, size_t mem,
                             rlim_t cpu_seconds) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, nullptr);

  // Move the fds above 10 first so the dup2s below cannot clobber each other, then close everything else.
  int fds[5] = {devnull, out_w, err_w, code_fd, res_w};
  for (int& f : fds) f = fcntl(f, F_DUPFD, 10);
  for (int i = 0; i < 5; i++) dup2(fds[i], i);
  if (syscall(SYS_close_range, 5u, ~0u, 0u) != 0)
    for (int f = 5; f < 4096; f++) close(f);

  if (chdir(workdir) != 0) {
    write_str(4, "setup-failed chdir\n");
    _exit(126);
  }
  bool netns = false;
  if (geteuid() == 0) {
    netns = unshare(CLONE_NEWNET) == 0;  // root may make a network namespace without a user namespace
    // Drop to nobody so the process limit applies. Where a container forbids it, go on as root, guarded as
    // nanochat guards it.
    if (setgroups(0, nullptr) == 0 && setgid(kNobody) == 0) {
      int rc = setuid(kNobody);
      (void)rc;
    }
  }
  if (mem > 0) {  // 0: no memory limit (nanochat's maximum_memory_bytes=None)
    set_limit(RLIMIT_AS, mem, mem);
    set_limit(RLIMIT_DATA, mem, mem);
    set_limit(RLIMIT_STACK, mem, mem);
  }
  set_limit(RLIMIT_CPU, cpu_seconds, cpu_seconds + 1);
  set_limit(RLIMIT_FSIZE, kExecFileSizeLimit, kExecFileSizeLimit);
  set_limit(RLIMIT_CORE, 0, 0);
  set_limit(RLIMIT_NPROC, kExecMaxProcesses, kExecMaxProcesses);
  if (!netns) netns = unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0;
  write_str(4, netns ? "netns=1\n" : "netns=0\n");
  execve(python, argv, envp);
  write_str(4, "exec-failed\n");
  _exit(127);
}

struct Stream {
  int fd;
  std::string* text;
  size_t cap;
  bool* truncated;
  bool open = true;
};

// Reads what is available; returns false at EOF.
bool pump(Stream& s) {
  char buf[65536];
  while (true) {
    ssize_t n = read(s.fd, buf, sizeof(buf));
    if (n > 0) {
      size_t room = s.cap > s.text->size() ? s.cap - s.text->size() : 0;
      s.text->append(buf, std::min(room, size_t(n)));
      if (size_t(n) > room && s.truncated) *s.truncated = true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return true;  // EAGAIN: nothing more for now
  }
}

}  // namespace

std::string python_interpreter() {
  std::string env = getenv_or("NANOCHAT_PYTHON", "");
  if (!env.empty()) {
    if (!executable(env)) fail("NANOCHAT_PYTHON={} is not an executable file; point it at a python3 interpreter", env);
    return env;
  }
  if (executable("/usr/bin/python3")) return "/usr/bin/python3";
  std::string path = getenv_or("PATH", "");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string cand = path.substr(start, end - start) + "/python3";
    if (end > start && executable(cand)) return cand;
    start = end + 1;
  }
  fail("python3 not found: code execution (HumanEval) needs a Python 3 interpreter; install python3 or set "
       "NANOCHAT_PYTHON");
}

ExecutionResult execute_code(const std::string& code, double timeout_s, size_t max_memory_bytes) {
  const std::string python = python_interpreter();
  if (!(timeout_s > 0)) fail("execute_code: timeout must be positive (got {})", timeout_s);

  // A fresh working directory, owned by the uid the code will run as.
  std::error_code tec;
  const fs::path tmp_root = fs::temp_directory_path(tec);
  if (tec) fail("no usable temp directory for the code sandbox ({}): set TMPDIR to a writable directory", tec.message());
  std::string tmpl = (tmp_root / "nanochat-exec-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    fail("cannot create a temp dir under {}: {} (set TMPDIR to a writable directory)", tmp_root.string(), strerror(errno));
  const fs::path workdir = tmpl;
  if (geteuid() == 0 && chown(tmpl.c_str(), kNobody, kNobody) != 0) {
    remove_tree(workdir);
    fail("cannot hand the sandbox dir {} to uid nobody: {}", tmpl, strerror(errno));
  }

  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, res_p[2] = {-1, -1};
  int code_fd = memfd_create("nanochat-code", MFD_CLOEXEC);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto close_all_and_fail = [&](const char* what) {
    int e = errno;
    for (int f : {out_p[0], out_p[1], err_p[0], err_p[1], res_p[0], res_p[1], code_fd, devnull})
      if (f >= 0) close(f);
    remove_tree(workdir);
    fail("cannot {} for the code sandbox: {}", what, strerror(e));
  };
  if (code_fd < 0 || devnull < 0 || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(res_p, O_CLOEXEC))
    close_all_and_fail("create the memfd and pipes");
  for (size_t off = 0; off < code.size();) {
    ssize_t n = write(code_fd, code.data() + off, code.size() - off);
    if (n <= 0) close_all_and_fail("write the code");
    off += size_t(n);
  }
  lseek(code_fd, 0, SEEK_SET);

  // argv and a scrubbed environment, built before fork.
  std::string timeout_arg = fmt::format("{}", timeout_s);
  std::vector<std::string> env_s = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tmpl, "TMPDIR=" + tmpl,
                                    "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "OMP_NUM_THREADS=1",
                                    "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"};
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string a0 = "python3", a1 = "-I", a2 = "-B", a3 = "-c", a4 = kPrelude;
  std::vector<char*> argv = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), timeout_arg.data(), nullptr};
  rlim_t cpu = rlim_t(std::ceil(timeout_s)) + 1;

  pid_t pid = fork();
  if (pid < 0) close_all_and_fail("fork");
  if (pid == 0)
    child_main(python.c_str(), argv.data(), envp.data(), tmpl.c_str(), devnull, out_p[1], err_p[1], code_fd,
               res_p[1], max_memory_bytes, cpu);
  setpgid(pid, pid);  // also from the parent, so the group exists before we might kill it
  for (int f : {out_p[1], err_p[1], res_p[1], code_fd, devnull}) close(f);

  ExecutionResult r;
  std::string verdict;
  Stream streams[3] = {{out_p[0], &r.stdout_text, kExecOutputCap, &r.stdout_truncated},
                       {err_p[0], &r.stderr_text, kExecOutputCap, &r.stderr_truncated},
                       {res_p[0], &verdict, kExecOutputCap, nullptr}};
  for (auto& s : streams) fcntl(s.fd, F_SETFL, O_NONBLOCK);

  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s + 1.0));
  bool exited = false, killed = false;
  int status = 0;
  // Exit is observed without reaping (WNOWAIT), so the pid - and with it the process group id - cannot be reused
  // before the group is killed below.
  auto exited_now = [&]() {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == ECHILD) return true;  // already reaped (SIGCHLD ignored by the embedding program)
      if (errno != EINTR) return false;
    }
    return info.si_pid == pid;
  };
  while (!exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      kill(-pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd pfds[3];
    int n = 0;
    for (auto& s : streams)
      if (s.open) pfds[n++] = {s.fd, POLLIN, 0};
    if (n > 0) poll(pfds, nfds_t(n), int(std::min<long long>(left, 20)));
    else usleep(2000);
    for (auto& s : streams)
      if (s.open) s.open = pump(s);
    exited = exited_now();
  }
  // Anything the code left behind in its group goes too; then reap, and drain what the pipes still hold.
  kill(-pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  const auto drain_deadline = clock::now() + std::chrono::seconds(1);
  while (clock::now() < drain_deadline) {
    pollfd pfds[3];
    int n = 0;
    for (auto& s : streams)
      if (s.open) pfds[n++] = {s.fd, POLLIN, 0};
    if (n == 0) break;
    poll(pfds, nfds_t(n), 20);
    for (auto& s : streams)
      if (s.open) s.open = pump(s);
  }
  for (auto& s : streams) close(s.fd);
  remove_tree(workdir);

  // verdict = "netns=0|1\n" written before exec, then the prelude's JSON.
  size_t nl = verdict.find('\n');
  std::string head = verdict.substr(0, nl), json_text = nl == std::string::npos ? "" : verdict.substr(nl + 1);
  if (head.rfind("setup-failed", 0) == 0) fail("the code sandbox could not be set up ({})", head.substr(13));
  if (json_text.rfind("exec-failed", 0) == 0) fail("cannot run {} in the code sandbox", python);
  r.network_isolated = head == "netns=1";
  if (killed) {
    r.success = false;
    r.timeout = true;
    r.error = "Execution timed out (process killed)";
    return r;
  }
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(json_text);
  } catch (const std::exception&) {
    r.success = false;
    r.timeout = true;  // nanochat reports a child that died without a verdict this way
    r.error = "Execution failed (no result returned)";
    return r;
  }
  r.success = v.value("success", false);
  r.timeout = v.value("timeout", false);
  r.memory_exceeded = v.value("memory_exceeded", false);
  if (v.contains("error") && v["error"].is_string()) r.error = v["error"].get<std::string>();
  return r;
}

}  // namespace nanochat
