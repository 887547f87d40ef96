// fp8: see fp8.h. The autograd node keeps the fp8 operands (not the bf16/fp32 ones) for backward, as nanochat's
// _Float8Matmul does: that halves what a converted layer holds between forward and backward.
#include "nanochat/fp8.h"

#include <algorithm>
#include <limits>

namespace nanochat {

namespace {

double fp8_max(torch::ScalarType dtype) {
  return dtype == torch::kFloat8_e4m3fn ? 448.0 : 57344.0;  // finfo(float8_e4m3fn).max, finfo(float8_e5m2).max
}

// _scaled_mm wants its second operand column-major: the same logical matrix, stored transposed.
torch::Tensor col_major(const torch::Tensor& x) { return x.t().contiguous().t(); }

struct Float8Matmul : torch::autograd::Function<Float8Matmul> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x2d,
                               const torch::Tensor& weight) {
    auto [xq, x_inv] = to_fp8(x2d, torch::kFloat8_e4m3fn);
    auto [wq, w_inv] = to_fp8(weight, torch::kFloat8_e4m3fn);
    ctx->save_for_backward({xq, x_inv, wq, w_inv});
    // wq is [N, K] row-major, so wq.t() is already the column-major [K, N] _scaled_mm wants. Fast accumulation in
    // forward, exact in backward (nanochat's choice).
    return at::_scaled_mm(xq, wq.t(), x_inv, w_inv, {}, {}, x2d.scalar_type(), /*use_fast_accum=*/true);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto xq = saved[0], x_inv = saved[1], wq = saved[2], w_inv = saved[3];
    auto go = grad_out[0].contiguous();
    auto [gq, g_inv] = to_fp8(go, torch::kFloat8_e5m2);  // gradients: the wider-range format
    auto grad_x = at::_scaled_mm(gq, col_major(wq), g_inv, w_inv, {}, {}, go.scalar_type(), false);  // [M, K]
    auto grad_w = at::_scaled_mm(gq.t().contiguous(), col_major(xq), g_inv, x_inv, {}, {}, go.scalar_type(),
                                 false);  // [N, K]
    return {grad_x, grad_w};
  }
};

torch::Tensor dequantize(const std::pair<torch::Tensor, torch::Tensor>& q) {
  return q.first.to(torch::kFloat) * q.second;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> to_fp8(const torch::Tensor& x, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const double max = fp8_max(dtype);
  auto xf = x.to(torch::kFloat);
  auto amax = xf.abs().max();
  auto scale = (max / amax.to(torch::kDouble).clamp_min(1e-12)).to(torch::kFloat);
  // Saturate before the cast: a plain cast of an out-of-range value gives NaN (e4m3fn) or inf (e5m2).
  auto q = (xf * scale).clamp_(-max, max).to(dtype);
  return {q, scale.reciprocal()};
}

torch::Tensor fp8_linear(const torch::Tensor& x, const torch::Tensor& weight) {
  const int64_t K = x.size(-1), N = weight.size(0);
  TORCH_CHECK(weight.size(1) == K, "fp8_linear: input has ", K, " features, the weight ", weight.size(1));
  TORCH_CHECK(K % 16 == 0 && N % 16 == 0, "fp8_linear: FP8 matmuls need both weight dims to be multiples of 16, got [",
              N, ", ", K, "]");
  const int64_t M = x.numel() / K;
  TORCH_CHECK(M % 16 == 0, "fp8_linear: FP8 training needs the rows per matmul (batch x sequence) to be a multiple of ",
              "16 (the grad_weight matmul runs over them), got ", M);
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return Float8Matmul::apply(x.reshape({-1, K}).contiguous(), weight).view(sizes);
}

torch::Tensor fp8_linear_reference(const torch::Tensor& x, const torch::Tensor& weight) {
  // Forward from the quantized operands; the gradients flow through a custom node that quantizes the incoming
  // gradient the same way, then multiplies the dequantized matrices in fp32.
  struct Reference : torch::autograd::Function<Reference> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x2d,
                                 const torch::Tensor& w) {
      auto xd = dequantize(to_fp8(x2d, torch::kFloat8_e4m3fn)), wd = dequantize(to_fp8(w, torch::kFloat8_e4m3fn));
      ctx->save_for_backward({xd, wd});
      return torch::mm(xd, wd.t()).to(x2d.scalar_type());
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
      auto saved = ctx->get_saved_variables();
      auto gd = dequantize(to_fp8(grad_out[0], torch::kFloat8_e5m2));
      auto dt = grad_out[0].scalar_type();
      return {torch::mm(gd, saved[1]).to(dt), torch::mm(gd.t(), saved[0]).to(dt)};
    }
  };
  const int64_t K = x.size(-1);
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return Reference::apply(x.reshape({-1, K}), weight).view(sizes);
}

Fp8Conversion convert_to_float8_training(GPTImpl& model) {
  Fp8Conversion n;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    auto* lin = dynamic_cast<CastLinearImpl*>(m.get());
    if (!lin) continue;
    ++n.linear_layers;
    const int64_t out = lin->weight.size(0), in = lin->weight.size(1);
    // nanochat's filter: cuBLAS FP8 needs multiples of 16, and small matmuls gain nothing from FP8.
    if (in % 16 != 0 || out % 16 != 0 || std::min(in, out) < 128) continue;
    if (lin == model.lm_head.get() && model.fused_loss) continue;
    lin->fp8 = true;
    ++n.converted;
  }
  return n;
}

Fp8Disabled::Fp8Disabled(GPTImpl& model) {
  for (const auto& m : model.modules(false))
    if (auto* lin = dynamic_cast<CastLinearImpl*>(m.get()); lin && lin->fp8) {
      lin->fp8 = false;
      layers_.push_back(lin);
    }
}

Fp8Disabled::~Fp8Disabled() {
  for (auto* lin : layers_) lin->fp8 = true;
}

}  // namespace nanochat
