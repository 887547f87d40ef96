// relu_square: see relu_square.h. The autograd node and the device dispatch; the CUDA kernels are in relu_square.cu.
#include "nanochat/cuda/relu_square.h"

namespace nanochat {

torch::Tensor relu_square_reference(const torch::Tensor& x) { return torch::relu(x).square(); }

#ifdef NANOCHAT_CUDA
namespace {
struct ReluSquareFn : torch::autograd::Function<ReluSquareFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto xc = x.contiguous();
    ctx->save_for_backward({xc});
    return cuda::relu_square_forward(xc);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto x = ctx->get_saved_variables()[0];
    return {cuda::relu_square_backward(x, grad_out[0].contiguous())};
  }
};
}  // namespace
#endif

torch::Tensor relu_square(const torch::Tensor& x) {
#ifdef NANOCHAT_CUDA
  const auto t = x.scalar_type();
  if (x.is_cuda() && (t == torch::kFloat || t == torch::kBFloat16 || t == torch::kHalf)) return ReluSquareFn::apply(x);
#endif
  return relu_square_reference(x);
}

}  // namespace nanochat
