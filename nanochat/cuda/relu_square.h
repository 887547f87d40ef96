// relu_square: the MLP's activation, relu(x)², as one autograd node (nanochat/gpt.py MLP.forward:
// F.relu(x).square(), which torch.compile fuses in Python).
//   y = relu_square(x);            // any device; CUDA tensors take the fused kernel in a CUDA build
//   y = relu_square_reference(x);  // the plain libtorch ops: the fused kernel's test oracle
// The fused node saves only x (the plain pair saves relu(x) as well) and reads it once in each direction:
// y = max(x, 0)², dx = 2·max(x, 0)·dy. The kernel lives in relu_square.cu, compiled only in the CUDA build.
#pragma once

#include <torch/torch.h>

namespace nanochat {

torch::Tensor relu_square(const torch::Tensor& x);
torch::Tensor relu_square_reference(const torch::Tensor& x);

namespace cuda {
// The kernels behind relu_square on CUDA (relu_square.cu); contiguous fp32/fp16/bf16 CUDA tensors.
torch::Tensor relu_square_forward(const torch::Tensor& x);
torch::Tensor relu_square_backward(const torch::Tensor& x, const torch::Tensor& grad_y);
}  // namespace cuda

}  // namespace nanochat
