// pack_weights: see pack_weights.h.
#include "nanochat/cpu/pack_weights.h"

#include <algorithm>

#include "nanochat/common.h"

namespace nanochat {

namespace {

// The matrices a decode step streams: per block c_q, c_k, c_v, attention c_proj, c_fc, MLP c_proj; then the lm_head.
std::vector<CastLinear> streamed_matrices(GPTImpl& m) {
  std::vector<CastLinear> out;
  for (const auto& block : m.blocks)
    for (const CastLinear& l : {block->attn->c_q, block->attn->c_k, block->attn->c_v, block->attn->c_proj,
                                block->mlp->c_fc, block->mlp->c_proj})
      out.push_back(l);
  out.push_back(m.lm_head);
  return out;
}

// int8 with a scale per output row: scale = max |w_row| / 127 (1 for an all-zero row), q = round(w / scale).
void pack_int8(CastLinearImpl& l) {
  const torch::Tensor w = l.weight.detach();
  torch::Tensor scale = w.abs().amax(1) / 127.0f;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  const torch::Tensor q = torch::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kChar).contiguous();
  l.packed = q;
  l.packed_scale = scale.contiguous();
  l.weight.set_data(q.to(torch::kFloat) * l.packed_scale.unsqueeze(1));
}

void pack_bf16(CastLinearImpl& l) {
  l.packed = l.weight.detach().to(torch::kBFloat16).contiguous();
  l.weight.set_data(l.packed.to(torch::kFloat));
}

}  // namespace

void pack_weights(GPTImpl& model, const std::string& dtype) {
  if (std::find(kWeightDtypes.begin(), kWeightDtypes.end(), dtype) == kWeightDtypes.end())
    fail("--dtype {} is not a weight dtype; use float32, bfloat16 or int8", dtype);
  if (dtype == "float32") return;
  if (!model.get_device().is_cpu())
    fail("--dtype {} packs weights for the CPU decode kernels; on {} set the compute dtype with NANOCHAT_DTYPE instead",
         dtype, model.get_device().str());
  torch::NoGradGuard no_grad;
  const std::vector<CastLinear> matrices = streamed_matrices(model);
  int64_t fp32_bytes = 0, packed_bytes = 0;
  for (CastLinear l : matrices) {
    if (l->packed.defined())
      fail("pack_weights: the model's weights are already packed as {}; pack a model once",
           c10::toString(l->packed.scalar_type()));
    if (l->weight.scalar_type() != torch::kFloat)
      fail("--dtype {} needs fp32 weights to pack, but a matrix is {}; load the model with NANOCHAT_DTYPE=float32",
           dtype, c10::toString(l->weight.scalar_type()));
    fp32_bytes += l->weight.numel() * 4;
    if (dtype == "int8")
      pack_int8(*l);
    else
      pack_bf16(*l);
    packed_bytes += l->packed.nbytes() + (l->packed_scale.defined() ? l->packed_scale.nbytes() : 0);
  }
  print0f("weights: {} matrices packed as {} for decoding, {:.1f} MB -> {:.1f} MB", matrices.size(), dtype,
          double(fp32_bytes) / 1e6, double(packed_bytes) / 1e6);
}

}  // namespace nanochat
