// relu_square.cu: the CUDA kernels behind nanochat::relu_square (relu_square.h). Elementwise, one grid-stride loop
// each; fp32 math whatever the storage dtype, so bf16 rounds once, at the store.
#include "nanochat/cuda/relu_square.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

namespace nanochat::cuda {

namespace {

template <typename T>
__global__ void relu_square_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = fmaxf(static_cast<float>(x[i]), 0.f);
    y[i] = static_cast<T>(v * v);
  }
}

template <typename T>
__global__ void relu_square_bwd_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                                       int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = fmaxf(static_cast<float>(x[i]), 0.f);
    dx[i] = static_cast<T>(2.f * v * static_cast<float>(dy[i]));
  }
}

// Enough blocks to fill the GPU a few times over; the grid-stride loop covers the rest.
dim3 grid_for(int64_t n, int threads) {
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return dim3(unsigned(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, int64_t(sms) * 8))));
}

}  // namespace

torch::Tensor relu_square_forward(const torch::Tensor& x) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "relu_square_forward: contiguous CUDA tensor expected");
  // Launch on x's GPU, whatever the calling thread's current device is (chat_web runs a replica per GPU).
  const c10::cuda::CUDAGuard device_guard(x.device());
  auto y = torch::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return y;
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_square_forward", [&] {
    relu_square_fwd_kernel<scalar_t>
        <<<grid_for(n, threads), threads, 0, stream>>>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

torch::Tensor relu_square_backward(const torch::Tensor& x, const torch::Tensor& grad_y) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous() && grad_y.is_contiguous() && grad_y.sizes() == x.sizes() &&
                  grad_y.scalar_type() == x.scalar_type(),
              "relu_square_backward: contiguous CUDA tensors of one shape and dtype expected");
  const c10::cuda::CUDAGuard device_guard(x.device());
  auto dx = torch::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return dx;
  constexpr int threads = 256;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_square_backward", [&] {
    relu_square_bwd_kernel<scalar_t><<<grid_for(n, threads), threads, 0, stream>>>(
        x.data_ptr<scalar_t>(), grad_y.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return dx;
}

}  // namespace nanochat::cuda
