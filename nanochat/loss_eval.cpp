// loss_eval: see loss_eval.h.
#include "nanochat/loss_eval.h"

#include <cmath>
#include <limits>

namespace nanochat {

double evaluate_bpb(GPT& model, const BatchSource& batches, int64_t steps, const torch::Tensor& token_bytes,
                    const std::function<void(torch::Tensor&)>& all_reduce_sum) {
  torch::NoGradGuard no_grad;
  auto dev = model->get_device();
  // fp32 nats and int64 bytes, as the reference accumulates them.
  torch::Tensor total_nats = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
  torch::Tensor total_bytes = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  torch::Tensor tb = token_bytes.to(dev);
  for (int64_t i = 0; i < steps; ++i) {
    auto [x, y] = batches();
    torch::Tensor loss = model->forward(x, y, nullptr, "none").reshape({-1}).to(torch::kFloat32);
    torch::Tensor yf = y.reshape({-1});
    torch::Tensor valid = yf.ge(0);
    // Ignored targets index token 0 safely and then count 0 bytes.
    torch::Tensor nb = torch::where(valid, tb.index_select(0, torch::where(valid, yf, torch::zeros_like(yf))),
                                    torch::zeros_like(yf, tb.options()));
    total_nats += (loss * nb.gt(0)).sum();
    total_bytes += nb.sum().to(torch::kInt64);
  }
  if (all_reduce_sum) {
    all_reduce_sum(total_nats);
    all_reduce_sum(total_bytes);
  }
  double nats = total_nats.item<double>(), bytes = double(total_bytes.item<int64_t>());
  if (bytes == 0) return std::numeric_limits<double>::infinity();
  return nats / (std::log(2.0) * bytes);
}

}  // namespace nanochat
