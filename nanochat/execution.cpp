// execution: see execution.h. The parent prepares everything (temp dir, pipes, the code in a memfd, argv, env)
// before fork, so the child only makes async-signal-safe calls until execve — safe from a multi-threaded program.
#include "nanochat/execution.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <vector>

#include "nanochat/common.h"

namespace nanochat {

namespace fs = std::filesystem;

namespace {

// The prelude python3 runs before the user code. It reads the code from fd 3, disables the destructive calls
// (the list nanochat's reliability_guard uses, plus the ones that would leave the process group), runs the code
// under a real-time timer with an empty globals dict, and ends with the exit status that says how it went. The
// statuses are drawn at random per run and read from fd 3 with the code, so a program that exits early (or writes
// a fake verdict anywhere) does not pass for one that ran to the end; the error message goes to stderr after a
// NUL marker, where the parent takes it out.
const char* kPrelude = R"PY(
import builtins, faulthandler, io, os, signal, sys
_read, _write, _close, _exit = os.read, os.write, os.close, os._exit
_parts = []
while True:
    _b = _read(3, 65536)
    if not _b:
        break
    _parts.append(_b)
_close(3)
_first, _, _body = b"".join(_parts).partition(b"\n")
_src = _body.decode("utf-8", "replace")
_codes = [int(c) for c in _first.split()]  # exit statuses for success, timeout, memory, error: this run's own
del _first, _body, _parts
_timeout = float(sys.argv[1])

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
    _status, _msg = _codes[0], ""
except _TimedOut:
    _status, _msg = _codes[1], "Execution timed out"
except MemoryError as e:
    _status, _msg = _codes[2], f"Memory limit exceeded: {e}"
except BaseException as e:
    _status, _msg = _codes[3], f"{type(e).__name__}: {e}"
for _s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
    try:
        _s.flush()
    except BaseException:
        pass
if _msg:  # the message only: what the run came to is the exit status
    _write(2, ("\n\x00nanochat-error: " + _msg.replace("\n", " ")).encode("utf-8", "backslashreplace"))
_exit(_status)
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

// What the child managed to set up, reported to the parent as "prot=<bits>".
enum Protection : unsigned { kNetNs = 1, kPidNs = 2, kReadOnlyFs = 4, kReadOnlyFsPartial = 8, kNobodyUid = 16 };

// The mounts of this process (mount point and the flags a read-only bind remount must keep), read by the parent
// before fork: /proc/self/mountinfo's 5th and 6th fields, octal escapes (\040 for a space) undone.
struct MountList {
  std::vector<std::string> points;
  std::vector<unsigned long> flags;
};
MountList read_mounts() {
  MountList m;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, opts;
    if (!(f >> id >> parent >> dev >> root >> point >> opts)) continue;
    std::string unescaped;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        unescaped += char(std::stoi(point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        unescaped += point[i];
      }
    }
    unsigned long fl = 0;
    std::istringstream o(opts);
    for (std::string opt; std::getline(o, opt, ',');) {
      if (opt == "nosuid")
        fl |= MS_NOSUID;
      else if (opt == "nodev")
        fl |= MS_NODEV;
      else if (opt == "noexec")
        fl |= MS_NOEXEC;
      else if (opt == "noatime")
        fl |= MS_NOATIME;
      else if (opt == "nodiratime")
        fl |= MS_NODIRATIME;
      else if (opt == "relatime")
        fl |= MS_RELATIME;
    }
    m.points.push_back(std::move(unescaped));
    m.flags.push_back(fl);
  }
  return m;
}

// In a fresh mount namespace: nothing propagates back out, the working dir becomes a mount of its own, and
// every other mount is remounted read-only. Returns the protection bit it achieved (0 when it could not start).
unsigned lock_down_filesystem(const char* workdir, const char* const* points, const unsigned long* flags, size_t n) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 0;
  if (mount(workdir, workdir, nullptr, MS_BIND, nullptr) != 0) return 0;
  size_t failed = 0;
  for (size_t i = 0; i < n; i++)
    if (mount(nullptr, points[i], nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | flags[i], nullptr) != 0) failed++;
  return failed == 0 ? kReadOnlyFs : kReadOnlyFsPartial;
}

void write_number(int fd, const char* key, long long v) {  // "key=<v>\n" without stdio (async-signal-safe)
  char buf[64];
  size_t n = 0;
  for (const char* k = key; *k; k++) buf[n++] = *k;
  buf[n++] = '=';
  char digits[24];
  size_t d = 0;
  bool neg = v < 0;
  unsigned long long u = neg ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do digits[d++] = char('0' + u % 10);
  while ((u /= 10) && d < sizeof(digits));
  if (neg) buf[n++] = '-';
  while (d) buf[n++] = digits[--d];
  buf[n++] = '\n';
  ssize_t r = write(fd, buf, n);
  (void)r;
}

// Runs in the forked child: only async-signal-safe calls. Never returns. The child is a small supervisor: it
// makes the namespaces, starts python3 as their first process (PID 1 of its own PID namespace where the kernel
// allows it: when it exits, the kernel kills everything it started, setsid() or not), waits for it and reports
// its wait status on fd 4 — a pipe python3 never holds, so the code cannot write its own verdict.
[[noreturn]] void child_main(const char* python, char* const argv[], char* const envp[], const char* workdir,
                             int devnull, int out_w, int err_w, int code_fd, int res_w, size_t mem, rlim_t cpu_seconds,
                             const char* const* mount_points, const unsigned long* mount_flags, size_t n_mounts) {
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
  unsigned prot = 0;
  const bool root = geteuid() == 0;
  if (root) {  // root makes each namespace without a user namespace
    if (unshare(CLONE_NEWNET) == 0) prot |= kNetNs;
    if (unshare(CLONE_NEWNS) == 0) prot |= lock_down_filesystem(workdir, mount_points, mount_flags, n_mounts);
    if (unshare(CLONE_NEWPID) == 0) prot |= kPidNs;
  } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID) == 0) {
    prot |= kNetNs | kPidNs | lock_down_filesystem(workdir, mount_points, mount_flags, n_mounts);
  } else if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
    prot |= kNetNs;
  }
  // Again: the working dir is now its own (writable) mount, which the old cwd reference does not see.
  if (chdir(workdir) != 0) {
    write_str(4, "setup-failed chdir\n");
    _exit(126);
  }
  // Drop to nobody (the supervisor too: it needs no privilege to wait) so the process limit applies and root's
  // files are out of reach; where a container forbids it, go on as root, guarded as nanochat guards it. Not
  // dumpable: code running as the same uid cannot ptrace the supervisor or open its fds through /proc.
  if (root && setgroups(0, nullptr) == 0 && setgid(kNobody) == 0 && setuid(kNobody) == 0) prot |= kNobodyUid;
  prctl(PR_SET_DUMPABLE, 0);
  const pid_t supervisor = getpid();
  const pid_t py = fork();
  if (py < 0) {
    write_str(4, "setup-failed fork\n");
    _exit(126);
  }
  if (py == 0) {
    close(4);
    // If the supervisor dies (the parent's timeout kill), so does this process and, as PID 1 of its namespace,
    // everything it started.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!(prot & kPidNs) && getppid() != supervisor) _exit(125);
    if (mem > 0) {  // 0: no memory limit (nanochat's maximum_memory_bytes=None)
      set_limit(RLIMIT_AS, mem, mem);
      set_limit(RLIMIT_DATA, mem, mem);
      set_limit(RLIMIT_STACK, mem, mem);
    }
    set_limit(RLIMIT_CPU, cpu_seconds, cpu_seconds + 1);
    set_limit(RLIMIT_FSIZE, kExecFileSizeLimit, kExecFileSizeLimit);
    set_limit(RLIMIT_CORE, 0, 0);
    set_limit(RLIMIT_NPROC, kExecMaxProcesses, kExecMaxProcesses);
    execve(python, argv, envp);
    _exit(127);
  }
  close(3);
  write_number(4, "prot", (long long)prot);
  int st = 0;
  while (waitpid(py, &st, 0) < 0 && errno == EINTR) {}
  write_number(4, "status", st);
  _exit(0);
}

// One line, the first time code runs in this process: which protections the sandbox has on this machine.
void log_protections_once(long long prot) {
  static std::once_flag once;
  std::call_once(once, [prot] {
    if (prot < 0) return;
    auto on = [prot](unsigned bit) { return (prot & bit) ? "on" : "off"; };
    print0f(
        "Code sandbox: pid namespace {}, read-only filesystem outside its temp dir {}, network namespace {}, "
        "uid nobody {}, rlimits on (memory, cpu, {} processes, file size); not a security sandbox (no seccomp)",
        on(kPidNs),
        (prot & kReadOnlyFs)          ? "on"
        : (prot & kReadOnlyFsPartial) ? "partial"
                                      : "off",
        on(kNetNs), on(kNobodyUid), kExecMaxProcesses);
  });
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
  fail(
      "python3 not found: code execution (HumanEval) needs a Python 3 interpreter; install python3 or set "
      "NANOCHAT_PYTHON");
}

ExecutionResult execute_code(const std::string& code, double timeout_s, size_t max_memory_bytes) {
  const std::string python = python_interpreter();
  if (!(timeout_s > 0)) fail("execute_code: timeout must be positive (got {})", timeout_s);

  // A fresh working directory, owned by the uid the code will run as.
  std::error_code tec;
  const fs::path tmp_root = fs::temp_directory_path(tec);
  if (tec)
    fail("no usable temp directory for the code sandbox ({}): set TMPDIR to a writable directory", tec.message());
  std::string tmpl = (tmp_root / "nanochat-exec-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    fail("cannot create a temp dir under {}: {} (set TMPDIR to a writable directory)", tmp_root.string(),
         strerror(errno));
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
  // This run's exit statuses for success, timeout, memory and error: four distinct numbers in [3, 120].
  int codes[4];
  {
    std::random_device rd;
    std::vector<int> pool;
    for (int c = 3; c <= 120; c++) pool.push_back(c);
    std::shuffle(pool.begin(), pool.end(), std::mt19937(rd()));
    std::copy(pool.begin(), pool.begin() + 4, codes);
  }
  const std::string payload = fmt::format("{} {} {} {}\n", codes[0], codes[1], codes[2], codes[3]) + code;
  for (size_t off = 0; off < payload.size();) {
    ssize_t n = write(code_fd, payload.data() + off, payload.size() - off);
    if (n <= 0) close_all_and_fail("write the code");
    off += size_t(n);
  }
  lseek(code_fd, 0, SEEK_SET);

  // argv and a scrubbed environment, built before fork.
  std::string timeout_arg = fmt::format("{}", timeout_s);
  std::vector<std::string> env_s = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                    "HOME=" + tmpl,
                                    "TMPDIR=" + tmpl,
                                    "LANG=C.UTF-8",
                                    "LC_ALL=C.UTF-8",
                                    "OMP_NUM_THREADS=1",
                                    "OPENBLAS_NUM_THREADS=1",
                                    "MKL_NUM_THREADS=1"};
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string a0 = "python3", a1 = "-I", a2 = "-B", a3 = "-c", a4 = kPrelude;
  std::vector<char*> argv = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), timeout_arg.data(), nullptr};
  rlim_t cpu = rlim_t(std::ceil(timeout_s)) + 1;
  const MountList mounts = read_mounts();
  std::vector<const char*> mount_points;
  for (const auto& m : mounts.points) mount_points.push_back(m.c_str());

  pid_t pid = fork();
  if (pid < 0) close_all_and_fail("fork");
  if (pid == 0)
    child_main(python.c_str(), argv.data(), envp.data(), tmpl.c_str(), devnull, out_p[1], err_p[1], code_fd, res_p[1],
               max_memory_bytes, cpu, mount_points.data(), mounts.flags.data(), mount_points.size());
  setpgid(pid, pid);  // also from the parent, so the group exists before we might kill it
  for (int f : {out_p[1], err_p[1], res_p[1], code_fd, devnull}) close(f);

  ExecutionResult r;
  std::string verdict;
  Stream streams[3] = {{out_p[0], &r.stdout_text, kExecOutputCap, &r.stdout_truncated},
                       {err_p[0], &r.stderr_text, kExecOutputCap, &r.stderr_truncated},
                       {res_p[0], &verdict, kExecOutputCap, nullptr}};
  for (auto& s : streams) fcntl(s.fd, F_SETFL, O_NONBLOCK);

  using clock = std::chrono::steady_clock;
  const auto deadline =
      clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(timeout_s + 1.0));
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
    if (n > 0)
      poll(pfds, nfds_t(n), int(std::min<long long>(left, 20)));
    else
      usleep(2000);
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

  // The supervisor's report: "prot=<bits>" once the sandbox stands, "status=<wait status>" when python3 ended.
  long long prot = -1, wstatus = -1;
  for (size_t pos = 0; pos < verdict.size();) {
    size_t nl = verdict.find('\n', pos);
    const std::string line = verdict.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? verdict.size() : nl + 1;
    if (line.rfind("setup-failed", 0) == 0) fail("the code sandbox could not be set up ({})", line.substr(13));
    if (line.rfind("prot=", 0) == 0) prot = std::atoll(line.c_str() + 5);
    if (line.rfind("status=", 0) == 0) wstatus = std::atoll(line.c_str() + 7);
  }
  r.network_isolated = prot >= 0 && (prot & kNetNs);
  log_protections_once(prot);
  // The prelude's message, after its NUL marker at the end of stderr (taken out of what the caller sees).
  std::string message;
  if (size_t m = r.stderr_text.rfind(std::string("\n\0nanochat-error: ", 18)); m != std::string::npos) {
    message = r.stderr_text.substr(m + 18);
    r.stderr_text.erase(m);
  }
  if (killed) {
    r.success = false;
    r.timeout = true;
    r.error = "Execution timed out (process killed)";
    return r;
  }
  const int exit_code = wstatus >= 0 && WIFEXITED(int(wstatus)) ? WEXITSTATUS(int(wstatus)) : -1;
  if (exit_code == 127 && r.stdout_text.empty()) fail("cannot run {} in the code sandbox", python);
  if (exit_code == codes[0]) {
    r.success = true;
  } else if (exit_code == codes[1]) {
    r.timeout = true;
    r.error = message.empty() ? "Execution timed out" : message;
  } else if (exit_code == codes[2]) {
    r.memory_exceeded = true;
    r.error = message.empty() ? "Memory limit exceeded" : message;
  } else if (exit_code == codes[3]) {
    r.error = message;
  } else {
    // Died or exited on its own before the prelude could end it (os._exit, a signal, the CPU limit): nanochat
    // reports a child that returned no result this way.
    r.timeout = true;
    r.error = "Execution failed (no result returned)";
  }
  return r;
}

}  // namespace nanochat
