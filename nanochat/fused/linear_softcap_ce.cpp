// linear_softcap_ce: see linear_softcap_ce.h. The plain path materializes [N, V] fp32 logits and then about ten
// more tensors of that size (division, tanh, softcap, log-softmax and their gradients): at V = 32768 that is
// memory traffic, not math. Here rows are processed in chunks; the gradient is computed in the forward pass
// (the loss is a scalar, so backward only scales it), and nothing of size [N, V] is ever alive at once.
#include "nanochat/fused/linear_softcap_ce.h"

#include <algorithm>

namespace nanochat {

namespace {
struct FusedLinearSoftcapCE : torch::autograd::Function<FusedLinearSoftcapCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& targets, int64_t vocab_size, double softcap, bool need_grad) {
    const int64_t N = x.size(0), d = x.size(1);
    auto wv = w.narrow(0, 0, vocab_size);
    auto valid = targets != -1;
    auto n_valid = valid.sum().to(torch::kFloat);
    // Rows per chunk: about 4M logits (16 MB fp32) on the CPU, where they stay in cache; 64M (256 MB) on a GPU, where
    // small chunks would make the ~15 kernels per chunk cost more to launch than to run. At least 64 rows.
    const int64_t per_chunk = x.is_cuda() ? int64_t{1} << 26 : int64_t{1} << 22;
    const int64_t rows = std::clamp<int64_t>(per_chunk / std::max<int64_t>(vocab_size, 1), 64, 4096);
    auto loss_sum = torch::zeros({}, x.options().dtype(torch::kFloat));
    torch::Tensor dx, dw;
    if (need_grad) {
      dx = torch::empty_like(x);
      dw = torch::zeros({w.size(0), d}, w.options().dtype(torch::kFloat));
    }
    // Skipping the mask when every row counts saves a multiply on the CPU; on a GPU the check would cost a device
    // sync per micro-batch (the host waits for the forward pass), so there the mask is always applied.
    const bool all_valid = !x.is_cuda() && n_valid.item<float>() == static_cast<float>(N);
    auto zero = torch::zeros({1}, x.options());
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
      int64_t n = std::min(rows, N - r0);
      auto xc = x.narrow(0, r0, n);
      auto tgt_idx = targets.narrow(0, r0, n).clamp_min(0).unsqueeze(1);
      auto vc = valid.narrow(0, r0, n);
      // t = tanh(z / softcap), with the 1/softcap folded into the matmul's alpha. Logits = softcap·t lie in
      // [-softcap, softcap], so exp() cannot overflow and the log-sum-exp needs no max subtraction.
      auto t = torch::addmm(zero, xc, wv.t(), /*beta=*/0, /*alpha=*/1.0 / softcap).to(torch::kFloat).tanh_();
      auto e = t * softcap;
      auto target_logit = e.gather(1, tgt_idx).squeeze(1);
      e.exp_();
      auto sum = e.sum(1, /*keepdim=*/true);
      auto row_loss = sum.squeeze(1).log() - target_logit;
      loss_sum += all_valid ? row_loss.sum() : (row_loss * vc).sum();
      if (!need_grad) continue;
      // d loss_row / d z = (softmax - onehot) · (1 - t²), zero on ignored rows; scaled by 1/n_valid below.
      auto& p = e.div_(sum);
      p.scatter_add_(1, tgt_idx,
                     all_valid ? torch::full({n, 1}, -1.0f, p.options()) : -vc.to(torch::kFloat).unsqueeze(1));
      if (!all_valid) p.mul_(vc.unsqueeze(1));
      p.addcmul_(p, t.mul_(t), -1.0);  // p·(1 - t²)
      auto dz = p.to(x.scalar_type());
      dx.narrow(0, r0, n).copy_(torch::mm(dz, wv));
      if (dz.scalar_type() == torch::kFloat)
        dw.narrow(0, 0, vocab_size).addmm_(dz.t(), xc);
      else
        dw.narrow(0, 0, vocab_size).add_(torch::mm(dz.t(), xc));
    }
    if (need_grad) {
      auto inv = 1.0 / n_valid;
      ctx->saved_data["dx"] = dx.mul_(inv.to(dx.scalar_type()));
      ctx->saved_data["dw"] = dw.mul_(inv).to(w.scalar_type());
    }
    return loss_sum / n_valid;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto g = grad_out[0];
    auto dx = ctx->saved_data["dx"].toTensor(), dw = ctx->saved_data["dw"].toTensor();
    return {dx * g.to(dx.scalar_type()),
            dw * g.to(dw.scalar_type()),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};
}  // namespace

torch::Tensor fused_linear_softcap_ce(const torch::Tensor& x, const torch::Tensor& weight, int64_t vocab_size,
                                      const torch::Tensor& targets, double softcap) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && targets.size(0) == x.size(0),
              "fused_linear_softcap_ce: expects x [N, d], weight [V, d], targets [N]");
  bool need_grad = torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  return FusedLinearSoftcapCE::apply(x, weight, targets, vocab_size, softcap, need_grad);
}

}  // namespace nanochat
