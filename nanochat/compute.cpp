// compute: see compute.h.
#include "nanochat/compute.h"

#include <cstdlib>
#include <mutex>

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
  // nanochat picks bf16 only on SM80+; the capability query needs CUDA headers and arrives with the CUDA build.
  if (torch::cuda::is_available()) return {torch::kBFloat16, "auto-detected: CUDA device"};
  return {torch::kFloat32, "auto-detected: no CUDA (CPU)"};
}

const DtypeChoice& dtype_choice() {
  static const DtypeChoice choice = decide_dtype();
  return choice;
}
}  // namespace

torch::Dtype compute_dtype() { return dtype_choice().dtype; }
std::string compute_dtype_reason() { return dtype_choice().reason; }

ComputeContext compute_init(const std::string& device_type_in) {
  std::string device_type = device_type_in.empty() ? autodetect_device_type() : device_type_in;
  if (device_type != "cuda" && device_type != "cpu")
    fail("--device-type={} is not supported; use cuda or cpu (or leave it empty to autodetect)", device_type);
  if (device_type == "cuda" && !torch::cuda::is_available())
    fail("--device-type=cuda but no CUDA device is available (this libtorch may be CPU-only); use --device-type=cpu");
  torch::manual_seed(42);
  ComputeContext ctx;
  ctx.device = device_type == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  return ctx;
}

void compute_cleanup() {}

}  // namespace nanochat
