// launch: start the ranks of a multi-process run on this node, as torchrun does (no Python needed).
//
//   nanochat launch --nproc-per-node 2 -- base_train --depth 12               # one node, 2 ranks
//   nanochat launch --nproc-per-node 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 \
//       -- base_train --depth 20                                                # node 0 of 2 (node 1: --node-rank 1)
//
// Each rank is this program re-executed with torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT); the subcommand's compute_init joins the process group
// from them. Rank 0's stdout and stderr pass straight through; other ranks' stdout is dropped (they print nothing
// there but what print0 skips) and their stderr is shown line by line as "[rank N] ...". SIGINT, SIGTERM and
// SIGHUP are forwarded to every rank. When a rank fails, the others are stopped (SIGTERM, then SIGKILL after 10 s)
// and launch exits with the failing rank's status (128 + signal when it was killed). On one node without
// --master-port a free port is picked. Not covered: elastic restarts and rendezvous backends (torchrun's c10d/etcd).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nanochat/common.h"
#include "nanochat/cli/flags.h"

using namespace nanochat;

namespace {

constexpr int kMaxRanks = 1024;
pid_t g_pids[kMaxRanks];  // read by the signal handler
volatile sig_atomic_t g_num_pids = 0;
volatile sig_atomic_t g_signal = 0;

void signal_ranks(int sig) {
  for (int i = 0; i < g_num_pids; ++i)
    if (g_pids[i] > 0) kill(g_pids[i], sig);
}

void forward_signal(int sig) {
  g_signal = sig;
  signal_ranks(sig);
}

// A TCP port nobody listens on right now (the kernel's pick), for single-node runs.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("launch: cannot open a socket to pick MASTER_PORT ({}); pass --master-port", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    fail("launch: cannot pick a free MASTER_PORT ({}); pass --master-port", std::strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::mutex g_stderr_mutex;

// Copies a rank's stderr to ours, each line prefixed with "[rank N] ".
void relay_stderr(int fd, int rank) {
  std::string prefix = fmt::format("[rank {}] ", rank), pending;
  char buf[4096];
  auto emit = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(g_stderr_mutex);
    std::string out = prefix + line + "\n";
    fwrite(out.data(), 1, out.size(), stderr);
    fflush(stderr);
  };
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, size_t(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      emit(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) emit(pending);
  close(fd);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

// True when name (kebab-case or snake_case) is one of the program's subcommands.
bool is_subcommand(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  static const char* const kNames[] = {
#define NANOCHAT_COMMAND(name, help) #name,
#include "scripts/commands.def"
#undef NANOCHAT_COMMAND
  };
  return std::any_of(std::begin(kNames), std::end(kNames), [&](const char* n) { return name == n; });
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int launch_main(int argc, char** argv) {
  int sep = -1;
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--")) {
      sep = i;
      break;
    }
  int nproc_per_node = 0, nnodes = 1, node_rank = 0, master_port = -1;
  std::string master_addr = "127.0.0.1";
  Flags app{
      "Start the ranks of a multi-process run (like torchrun): nanochat launch --nproc-per-node N -- <subcommand> ...",
      "nanochat launch"};
  app.add_option("--nproc-per-node", nproc_per_node, "ranks (processes) on this node; one per GPU on CUDA")->required();
  app.add_option("--nnodes", nnodes, "number of nodes");
  app.add_option("--node-rank", node_rank, "this node's index, 0..nnodes-1");
  app.add_option("--master-addr", master_addr, "address of the node running rank 0 (the rendezvous)");
  app.add_option("--master-port", master_port, "rendezvous port (default: a free port on one node, 29500 on several)");
  if (int rc = app.parse_or_exit(sep < 0 ? argc : sep, argv); rc >= 0) return rc;
  if (sep < 0 || sep + 1 >= argc)
    fail("launch needs the subcommand after '--', e.g. nanochat launch --nproc-per-node 2 -- base_train --depth 4");
  std::string sub = argv[sep + 1];
  if (sub == "launch") fail("launch cannot launch itself; put the subcommand to run after '--'");
  if (!is_subcommand(sub)) fail("unknown subcommand '{}' after '--' (nanochat --help lists them)", sub);
  if (nproc_per_node < 1 || nproc_per_node > kMaxRanks)
    fail("--nproc-per-node={} must be 1..{}", nproc_per_node, kMaxRanks);
  if (nnodes < 1) fail("--nnodes={} must be at least 1", nnodes);
  if (node_rank < 0 || node_rank >= nnodes) fail("--node-rank={} must be in 0..{}", node_rank, nnodes - 1);
  if (master_port == -1) master_port = nnodes == 1 ? free_port() : 29500;
  if (master_port < 1 || master_port > 65535) fail("--master-port={} is not a TCP port (1-65535)", master_port);
  const int world_size = nnodes * nproc_per_node;

  // Everything the children need is built before the first fork: the child only dup2s and execs.
  std::vector<std::string> sub_args;
  sub_args.push_back("nanochat");
  for (int i = sep + 1; i < argc; ++i) sub_args.push_back(argv[i]);
  std::vector<char*> child_argv;
  for (auto& a : sub_args) child_argv.push_back(a.data());
  child_argv.push_back(nullptr);
  const char* kOurs[] = {
      "RANK=", "LOCAL_RANK=", "WORLD_SIZE=", "LOCAL_WORLD_SIZE=", "GROUP_RANK=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    bool ours = false;
    for (const char* k : kOurs) ours = ours || !std::strncmp(*e, k, std::strlen(k));
    if (!ours) base_env.push_back(*e);
  }
  std::vector<std::vector<std::string>> envs(size_t(nproc_per_node), base_env);
  for (int lr = 0; lr < nproc_per_node; ++lr) {
    auto& env = envs[size_t(lr)];
    env.push_back(fmt::format("RANK={}", node_rank * nproc_per_node + lr));
    env.push_back(fmt::format("LOCAL_RANK={}", lr));
    env.push_back(fmt::format("WORLD_SIZE={}", world_size));
    env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", nproc_per_node));
    env.push_back(fmt::format("GROUP_RANK={}", node_rank));
    env.push_back("MASTER_ADDR=" + master_addr);
    env.push_back(fmt::format("MASTER_PORT={}", master_port));
  }
  std::vector<std::vector<char*>> envps(envs.size());
  for (size_t i = 0; i < envs.size(); ++i) {
    for (auto& v : envs[i]) envps[i].push_back(v.data());
    envps[i].push_back(nullptr);
  }

  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t self = getpid();
  std::vector<int> relay_fds(size_t(nproc_per_node), -1);
  for (int lr = 0; lr < nproc_per_node; ++lr) {
    const int rank = node_rank * nproc_per_node + lr;
    int err_pipe[2] = {-1, -1};
    if (rank != 0 && pipe2(err_pipe, O_CLOEXEC) != 0) fail("launch: pipe failed: {}", std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
      signal_ranks(SIGKILL);
      fail("launch: fork failed: {}", std::strerror(errno));
    }
    if (pid == 0) {
      // The rank dies with us, whatever way we end.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != self) _exit(1);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &dfl, nullptr);
      setpgid(0, 0);  // a terminal's Ctrl-C reaches launch only, which forwards it once
      if (rank != 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
      }
      execve("/proc/self/exe", child_argv.data(), envps[size_t(lr)].data());
      const char msg[] = "launch: cannot re-execute /proc/self/exe\n";
      (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
      _exit(127);
    }
    g_pids[lr] = pid;
    g_num_pids = lr + 1;
    if (rank != 0) {
      close(err_pipe[1]);
      relay_fds[size_t(lr)] = err_pipe[0];
    }
  }
  {
    std::string pids;
    for (int lr = 0; lr < nproc_per_node; ++lr)
      pids += fmt::format("{}rank {} pid {}", lr ? ", " : "", node_rank * nproc_per_node + lr, g_pids[lr]);
    std::fprintf(stderr, "launch: world size %d, rendezvous %s:%d; %s\n", world_size, master_addr.c_str(), master_port,
                 pids.c_str());
  }
  std::vector<std::thread> relays;
  for (int lr = 0; lr < nproc_per_node; ++lr)
    if (relay_fds[size_t(lr)] >= 0)
      relays.emplace_back(relay_stderr, relay_fds[size_t(lr)], node_rank * nproc_per_node + lr);

  int running = nproc_per_node, result = 0;
  bool stopping = false;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    if (pid == 0) {  // stopping: poll until the others are gone, then force them
      if (std::chrono::steady_clock::now() > kill_deadline) {
        signal_ranks(SIGKILL);
        kill_deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int lr = 0;
    while (lr < nproc_per_node && g_pids[lr] != pid) ++lr;
    if (lr == nproc_per_node) continue;
    g_pids[lr] = -1;
    running--;
    const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (failed && !stopping) {
      result = exit_code(status);
      stopping = true;
      if (running > 0 && !g_signal) {
        std::lock_guard<std::mutex> lock(g_stderr_mutex);
        std::fprintf(stderr, "launch: rank %d %s; stopping the other ranks\n", node_rank * nproc_per_node + lr,
                     describe(status).c_str());
      }
      signal_ranks(SIGTERM);
      kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
  }
  for (auto& t : relays) t.join();
  if (result == 0 && g_signal) result = 128 + g_signal;
  return result;
}
