// compute: see compute.h.
#include "nanochat/compute.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// libtorch's headers hide each backend behind the macro its own build defined; CMakeLists.txt defines them for
// this file when the backend's headers are present (Gloo: libgloo-dev; NCCL: the CUDA build, with nccl.h).
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#ifdef NANOCHAT_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

#include "nanochat/common.h"

namespace nanochat {

std::string autodetect_device_type() {
  std::string t = torch::cuda::is_available() ? "cuda" : "cpu";
  print0f("Autodetected device type: {}", t);
  return t;
}

namespace {
struct DtypeChoice {
  torch::Dtype dtype;
  std::string reason;
};

DtypeChoice decide_dtype() {
  if (const char* v = std::getenv("NANOCHAT_DTYPE"); v && *v) {
    std::string s = v;
    if (s == "bfloat16") return {torch::kBFloat16, "set via NANOCHAT_DTYPE=bfloat16"};
    if (s == "float16") return {torch::kFloat16, "set via NANOCHAT_DTYPE=float16"};
    if (s == "float32") return {torch::kFloat32, "set via NANOCHAT_DTYPE=float32"};
    fail("NANOCHAT_DTYPE={} is not a dtype; use bfloat16, float16 or float32", s);
  }
  // nanochat/common.py _detect_compute_dtype: bf16 needs SM 80+ (Ampere); older GPUs train in fp32.
#ifdef NANOCHAT_CUDA
  if (torch::cuda::is_available()) {
    const auto* p = at::cuda::getCurrentDeviceProperties();
    const std::string sm = fmt::format("{}{}", p->major, p->minor);
    if (p->major >= 8) return {torch::kBFloat16, fmt::format("auto-detected: CUDA SM {} (bf16 supported)", sm)};
    return {torch::kFloat32, fmt::format("auto-detected: CUDA SM {} (pre-Ampere, bf16 not supported, using fp32)", sm)};
  }
#endif
  return {torch::kFloat32, "auto-detected: no CUDA (CPU)"};
}

const DtypeChoice& dtype_choice() {
  static const DtypeChoice choice = decide_dtype();
  return choice;
}
}  // namespace

torch::Dtype compute_dtype() { return dtype_choice().dtype; }
std::string compute_dtype_reason() { return dtype_choice().reason; }

namespace {

c10::intrusive_ptr<c10d::ProcessGroup> g_group;  // null when single process
int g_rank = 0, g_world_size = 1, g_local_rank = 0;
bool g_cuda = false;  // NCCL: collectives take CUDA tensors
// Every rank's address, learned at the rendezvous: once a collective has failed the others cannot be asked.
std::vector<std::string> g_peer_addrs;

// An integer environment variable, or nullopt when unset; Error when set but not an integer.
std::optional<long> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (!*v || *end) fail("{}='{}' is not an integer (set by the launcher: nanochat launch or torchrun)", name, v);
  return x;
}

std::string env_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// First line of a libtorch error (its what() goes on with a C++ backtrace).
std::string first_line(const std::exception& e) {
  std::string m = e.what();
  if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}

}  // namespace

void collective_failed(const char* what, const std::exception& e) {
  // The peers by rank and address: with two ranks that is the one lost.
  std::string peers;
  for (int r = 0, listed = 0; r < int(g_peer_addrs.size()); r++) {
    if (r == g_rank) continue;
    if (listed++ == 8) {
      peers += ", ...";
      break;
    }
    peers += fmt::format("{}rank {} at {}", peers.empty() ? "" : ", ", r, g_peer_addrs[size_t(r)]);
  }
  const std::string who = g_peer_addrs.size() == 2 ? "its peer " + peers
                          : peers.empty()          ? std::string("another rank")
                                                   : "one of its peers (" + peers + ")";
  fail("rank {} lost its process group during {}: {} died or did not answer within NANOCHAT_DIST_TIMEOUT={}s ({})",
       g_rank, what, who, dist_timeout().count() / 1000, first_line(e));
}

namespace {

// The local address this machine reaches `host` from, or "" when it cannot tell (a connected UDP socket sends
// nothing; the kernel only picks the route). Gloo's default device follows the hostname, which on a machine with
// several interfaces, or in a container, often resolves to an address the other nodes cannot reach.
std::string local_address_towards(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || !res) return "";
  std::string out;
  int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  char buf[INET6_ADDRSTRLEN] = {0};
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    const void* a = local.ss_family == AF_INET
                        ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
                        : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
    if (inet_ntop(local.ss_family, a, buf, sizeof(buf))) out = buf;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return out;
}

// A ProcessGroup serving one backend (NCCL for CUDA tensors, Gloo for CPU ones), as torch.distributed builds it.
template <typename BackendT>
c10::intrusive_ptr<c10d::ProcessGroup> group_of(const c10::intrusive_ptr<c10d::Store>& store,
                                                c10::intrusive_ptr<BackendT> backend, c10::DeviceType device,
                                                c10d::ProcessGroup::BackendType type) {
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, g_rank, g_world_size);
  group->setDefaultBackend(type);
  group->setBackend(device, type, c10::intrusive_ptr<c10d::Backend>(std::move(backend)));
  return group;
}

c10::intrusive_ptr<c10d::ProcessGroup> make_group(const c10::intrusive_ptr<c10d::Store>& store, bool cuda,
                                                  const std::string& master_addr) {
  const auto timeout = dist_timeout();
  if (cuda) {
#ifdef USE_C10D_NCCL
    // Without async error handling a collective on a dead peer never returns; with it NCCL's watchdog aborts
    // the communicator once the timeout passes.
    setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
    setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", 0);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, g_rank, g_world_size, opts);
    return group_of(store, backend, c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL);
#else
    fail("multi-process CUDA needs a libtorch built with NCCL; this build has none (use --device-type=cpu)");
#endif
  }
#ifdef USE_C10D_GLOO
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  // Gloo connects ranks over TCP: GLOO_SOCKET_IFNAME picks the interface (several nodes); on one node the loopback
  // device always works, while the default device follows the hostname, which containers often do not resolve.
  if (std::string ifname = env_str("GLOO_SOCKET_IFNAME"); !ifname.empty())
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (master_addr == "127.0.0.1" || master_addr == "localhost")
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else if (std::string local = local_address_towards(master_addr); !local.empty())
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));  // the route to rank 0
  else
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, g_rank, g_world_size, opts);
  return group_of(store, backend, c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO);
#else
  fail("multi-process CPU runs need libtorch's Gloo headers (libgloo-dev); reconfigure after installing them");
#endif
}

c10d::ReduceOp to_c10d(Reduce op) {
  switch (op) {
    case Reduce::max:
      return c10d::ReduceOp::MAX;
    case Reduce::min:
      return c10d::ReduceOp::MIN;
    default:
      return c10d::ReduceOp::SUM;  // avg = sum / world size (Gloo has no AVG)
  }
}

}  // namespace

std::chrono::milliseconds dist_timeout() {
  static const std::chrono::milliseconds t = [] {
    double secs = 600;
    if (const char* v = std::getenv("NANOCHAT_DIST_TIMEOUT"); v && *v) {
      char* end = nullptr;
      secs = std::strtod(v, &end);
      if (*end || !(secs > 0)) fail("NANOCHAT_DIST_TIMEOUT='{}' must be a positive number of seconds", v);
    }
    return std::chrono::milliseconds(int64_t(secs * 1000));
  }();
  return t;
}

ComputeContext compute_init(const std::string& device_type_in) {
  std::string device_type = device_type_in.empty() ? autodetect_device_type() : device_type_in;
  if (device_type != "cuda" && device_type != "cpu")
    fail("--device-type={} is not supported; use cuda or cpu (or leave it empty to autodetect)", device_type);
  if (device_type == "cuda" && !torch::cuda::is_available())
    fail("--device-type=cuda but no CUDA device is available (this libtorch may be CPU-only); use --device-type=cpu");
  torch::manual_seed(42);
  ComputeContext ctx;
  ctx.device = device_type == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);

  // torchrun's variables: all three of RANK, LOCAL_RANK, WORLD_SIZE, or none (one process).
  auto rank = env_int("RANK"), local_rank = env_int("LOCAL_RANK"), world = env_int("WORLD_SIZE");
  if (!rank && !local_rank && !world) return ctx;
  if (!rank || !local_rank || !world)
    fail(
        "RANK, LOCAL_RANK and WORLD_SIZE must be set together (RANK {}, LOCAL_RANK {}, WORLD_SIZE {}); "
        "start ranks with nanochat launch or torchrun",
        rank ? "set" : "unset", local_rank ? "set" : "unset", world ? "set" : "unset");
  if (*world < 1 || *rank < 0 || *rank >= *world || *local_rank < 0 || *local_rank > *rank)
    fail("inconsistent ranks: RANK={} LOCAL_RANK={} WORLD_SIZE={} (need 0 <= LOCAL_RANK <= RANK < WORLD_SIZE)", *rank,
         *local_rank, *world);
  ctx.rank = int(*rank);
  ctx.local_rank = int(*local_rank);
  ctx.world_size = int(*world);
  ctx.ddp = ctx.world_size > 1;
  if (device_type == "cuda") {
    if (ctx.local_rank >= int(torch::cuda::device_count()))
      fail("LOCAL_RANK={} but only {} CUDA devices are visible; start at most that many ranks per node", ctx.local_rank,
           torch::cuda::device_count());
    ctx.device = torch::Device(torch::kCUDA, int8_t(ctx.local_rank));
#ifdef NANOCHAT_CUDA
    c10::cuda::set_device(int8_t(ctx.local_rank));
#endif
  }
  if (!ctx.ddp) return ctx;

  const std::string addr = env_str("MASTER_ADDR");
  auto port = env_int("MASTER_PORT");
  if (addr.empty() || !port)
    fail(
        "WORLD_SIZE={} needs MASTER_ADDR and MASTER_PORT (the rendezvous address of rank 0); "
        "nanochat launch and torchrun set them",
        ctx.world_size);
  if (*port < 1 || *port > 65535) fail("MASTER_PORT={} is not a TCP port (1-65535)", *port);
  dist_timeout();  // a bad NANOCHAT_DIST_TIMEOUT fails here, with its own message
  g_rank = ctx.rank;
  g_world_size = ctx.world_size;
  g_local_rank = ctx.local_rank;
  g_cuda = device_type == "cuda";
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(*port);
    so.isServer = ctx.rank == 0;
    so.numWorkers = size_t(ctx.world_size);
    so.waitWorkers = true;
    so.timeout = dist_timeout();
    store = c10::make_intrusive<c10d::TCPStore>(addr, so);
  } catch (const std::exception& e) {
    fail("rank {}: rendezvous at {}:{} failed ({}); {}", ctx.rank, addr, *port, first_line(e),
         ctx.rank == 0 ? "is the port already in use? pick another MASTER_PORT"
                       : "is rank 0 running and MASTER_ADDR/MASTER_PORT reachable?");
  }
  try {  // for error messages only: a failure here is not one of the run
    std::string mine = local_address_towards(addr);
    if (mine.empty()) mine = "an unknown address";
    store->set(fmt::format("nanochat/addr/{}", ctx.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    for (int r = 0; r < ctx.world_size; r++) {
      auto v = store->get(fmt::format("nanochat/addr/{}", r));
      g_peer_addrs.emplace_back(v.begin(), v.end());
    }
  } catch (const std::exception&) {
    g_peer_addrs.clear();
  }
  try {
    g_group = make_group(store, device_type == "cuda", addr);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank {}: could not set up the process group: {}", ctx.rank, first_line(e));
  }
  barrier();
  print0f("Distributed world size: {}", ctx.world_size);
  return ctx;
}

void compute_cleanup() {
  if (!g_group) return;
  barrier();
  g_group.reset();
}

c10::intrusive_ptr<c10d::ProcessGroup> process_group() { return g_group; }

std::string version_report() {
  std::string out = fmt::format("nanochat-cpp, libtorch {}\n", TORCH_VERSION);
#ifdef NANOCHAT_CUDA
  out += fmt::format("CUDA compiled: {} (CUDA runtime {}.{})\n", NANOCHAT_CUDA_ARCHS, CUDART_VERSION / 1000,
                     CUDART_VERSION % 1000 / 10);
  if (torch::cuda::is_available()) {
    const auto* p = at::cuda::getCurrentDeviceProperties();
    out += fmt::format("device: cuda ({} x {}, sm_{}{}, {:.0f} GiB)\n", torch::cuda::device_count(), p->name, p->major,
                       p->minor, double(p->totalGlobalMem) / (1 << 30));
    return out;
  }
  return out + "device: cpu (no CUDA device visible)\n";
#else
  return out + "CUDA compiled: no (CPU build)\ndevice: cpu\n";
#endif
}
bool is_distributed() { return bool(g_group); }
int dist_rank() { return g_group ? g_rank : 0; }
int dist_world_size() { return g_group ? g_world_size : 1; }

void all_reduce(torch::Tensor& t, Reduce op) {
  if (!g_group) return;
  try {
    c10d::AllreduceOptions o;
    o.reduceOp = to_c10d(op);
    o.timeout = dist_timeout();
    std::vector<torch::Tensor> ts{t};
    g_group->allreduce(ts, o)->wait();
  } catch (const std::exception& e) {
    collective_failed("all_reduce", e);
  }
  if (op == Reduce::avg) t.div_(g_world_size);
}

double all_reduce(double v, Reduce op) {
  if (!g_group) return v;
  torch::Tensor t = torch::tensor({v}, torch::TensorOptions().dtype(torch::kFloat64));
  if (g_cuda) t = t.to(torch::Device(torch::kCUDA, int8_t(g_local_rank)));
  all_reduce(t, op);
  return t.item<double>();
}

void all_reduce(std::vector<float>& v, Reduce op) {
  if (!g_group || v.empty()) return;
  torch::Tensor t = torch::from_blob(v.data(), {int64_t(v.size())}, torch::kFloat32).clone();
  if (g_cuda) t = t.to(torch::Device(torch::kCUDA, int8_t(g_local_rank)));
  all_reduce(t, op);
  t = t.cpu().contiguous();
  std::memcpy(v.data(), t.data_ptr<float>(), v.size() * sizeof(float));
}

void broadcast(torch::Tensor& t, int root) {
  if (!g_group) return;
  try {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = dist_timeout();
    std::vector<torch::Tensor> ts{t};
    g_group->broadcast(ts, o)->wait();
  } catch (const std::exception& e) {
    collective_failed("broadcast", e);
  }
}

void barrier() {
  if (!g_group) return;
  try {
    c10d::BarrierOptions o;
    o.timeout = dist_timeout();
    if (g_cuda) o.device_ids = {g_local_rank};
    g_group->barrier(o)->wait();
  } catch (const std::exception& e) {
    collective_failed("barrier", e);
  }
}

void zero_missing_grads(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params)
    if (p.requires_grad() && !p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
}

}  // namespace nanochat
