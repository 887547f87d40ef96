// linear_softcap_ce: nanochat's training loss head in one fused autograd node — lm_head, the 15·tanh(z/15) softcap
// and mean cross-entropy (nanochat/gpt.py GPT.forward, whose logits torch.compile fuses) without ever holding the
// [N, V] fp32 logits. GPT::forward uses it for the "mean" training loss; the plain path (lm_head, crop, fp32,
// softcap, F::cross_entropy) stays in gpt.cpp and is its test oracle (tests: GptParity, GptInit).
//
//   auto loss = fused_linear_softcap_ce(x.reshape({-1, d}), lm_head->weight, vocab_size, targets.reshape({-1}), 15.0);
//   loss.backward();
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace nanochat {

// mean over non-ignored rows (target -1 = ignore) of cross_entropy(softcap·tanh((x·Wᵀ)[:, :vocab_size] / softcap)),
// computed in row chunks with its gradient, so no [N, V] logits tensor is kept. x [N,d], weight [Vp,d] in x's dtype.
// Equal to the plain path (lm_head, crop, fp32, softcap, cross_entropy) up to float rounding.
torch::Tensor fused_linear_softcap_ce(const torch::Tensor& x, const torch::Tensor& weight, int64_t vocab_size,
                                      const torch::Tensor& targets, double softcap);

}  // namespace nanochat
