// pack_weights (nanochat/cpu/pack_weights): what int8 and bf16 packing store, and that a packed model decodes as the
// unpacked model of the same (rounded) values does — step by step through the decode kernels and through the
// engine's greedy tokens — at batch 1 and past the kernel's rows (BLAS on the fp32 copy). Also the refusals.
#include <gtest/gtest.h>

#include "nanochat/common.h"
#include "nanochat/cpu/pack_weights.h"
#include "nanochat/cpu/small_linear.h"
#include "nanochat/engine.h"
#include "nanochat/gpt.h"
#include "model_test_util.h"
#include "tokenizer_test_util.h"

using namespace nanochat;

namespace {

using tok_test::byte_tokenizer;

GPT random_model() { return model_test::small_random_gpt(byte_tokenizer().get_vocab_size(), /*seed=*/5); }

// A model holding the same tensors as m but no packed copies: it computes with the fp32 values through libtorch.
GPT unpacked_copy(const GPT& m) {
  GPT copy(m->config);
  copy->load_state_dict(m->state_dict());
  copy->window_sizes = m->window_sizes;
  copy->fused_decode = false;
  return copy;
}

std::map<std::string, torch::Tensor> weights_of(const GPT& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : m->state_dict()) out[name] = t.detach().clone();
  return out;
}

float max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

// Prefill B rows, then decode `steps` tokens through the packed model and its unpacked copy, comparing logits.
void expect_decodes_as_unpacked(GPT& packed, int64_t B) {
  torch::NoGradGuard no_grad;
  GPT plain = unpacked_copy(packed);
  const auto& c = packed->config;
  auto cache = [&] { return KVCache(B, c.n_kv_head, 24, c.n_embd / c.n_head, c.n_layer, torch::kCPU, torch::kFloat); };
  KVCache a = cache(), b = cache();
  torch::manual_seed(11);
  torch::Tensor ids = torch::randint(c.vocab_size, {B, 5}, torch::kLong);
  EXPECT_LT(max_diff(packed->forward_last(ids, a), plain->forward_last(ids, b)), 2e-4);
  for (int s = 0; s < 12; ++s) {
    torch::Tensor next = torch::randint(c.vocab_size, {B, 1}, torch::kLong);
    torch::Tensor la = packed->forward_last(next, a), lb = plain->forward_last(next, b);
    EXPECT_LT(max_diff(la, lb), 2e-4) << "B=" << B << " step " << s;
  }
}

}  // namespace

TEST(PackWeights, Int8StoresEachRowAtItsScale) {
  GPT m = random_model();
  const auto before = weights_of(m);
  pack_weights(*m, "int8");
  torch::NoGradGuard no_grad;
  int packed = 0;
  for (const auto& [name, w] : m->state_dict()) {
    if (name.find("lm_head") == std::string::npos && name.find("c_") == std::string::npos) {
      EXPECT_TRUE(torch::equal(w, before.at(name))) << name << " is not a streamed matrix and must stay as it was";
      continue;
    }
    ++packed;
    const torch::Tensor orig = before.at(name);
    // The scale maps each row's largest magnitude to 127; every value moves by at most half a step.
    const torch::Tensor scale = orig.abs().amax(1, true) / 127.0f;
    EXPECT_TRUE(((w - orig).abs() <= scale * 0.5f + 1e-7f).all().item<bool>()) << name;
    const torch::Tensor steps = w / scale;
    EXPECT_LT(max_diff(steps, steps.round()), 1e-3) << name << ": values are not whole steps of the row's scale";
  }
  EXPECT_EQ(packed, 3 * 6 + 1);  // six matrices per block and the lm_head
  EXPECT_EQ(m->lm_head->packed.scalar_type(), torch::kChar);
  EXPECT_EQ(m->blocks[0]->attn->ve_gate->packed.defined(), false);
}

TEST(PackWeights, Bf16RoundsToNearestEven) {
  GPT m = random_model();
  const torch::Tensor before = m->blocks[1]->mlp->c_fc->weight.detach().clone();
  pack_weights(*m, "bfloat16");
  EXPECT_TRUE(torch::equal(m->blocks[1]->mlp->c_fc->weight, before.to(torch::kBFloat16).to(torch::kFloat)));
  EXPECT_EQ(m->blocks[1]->mlp->c_fc->packed.scalar_type(), torch::kBFloat16);
  EXPECT_FALSE(m->lm_head->packed_scale.defined());
}

TEST(PackWeights, DecodesAsTheUnpackedModelOfTheSameValues) {
  for (const char* dtype : {"int8", "bfloat16"}) {
    SCOPED_TRACE(dtype);
    GPT m = random_model();
    pack_weights(*m, dtype);
    for (int64_t B : {int64_t{1}, int64_t{3}, kSmallLinearMaxRows + 2}) expect_decodes_as_unpacked(m, B);
  }
}

TEST(PackWeights, GreedyTokensThroughTheEngineEqualTheUnpackedModel) {
  GPT m = random_model();
  pack_weights(*m, "int8");
  GPT plain = unpacked_copy(m);
  const Tokenizer& tok = byte_tokenizer();
  const std::vector<int32_t> prompt = {tok.get_bos_token_id(), 17, 3, 99, 42};
  auto greedy = [&](GPT& model) {
    Engine engine(model, tok);
    return engine.generate_batch(prompt, 1, 30, 0.0, 0, 42).first.at(0);
  };
  EXPECT_EQ(greedy(m), greedy(plain));
}

TEST(PackWeights, RefusesWhatItCannotDo) {
  GPT m = random_model();
  const torch::Tensor before = m->lm_head->weight.detach().clone();
  pack_weights(*m, "float32");  // as loaded: nothing to pack
  EXPECT_FALSE(m->lm_head->packed.defined());
  EXPECT_TRUE(torch::equal(m->lm_head->weight, before));
  EXPECT_THROW(pack_weights(*m, "float16"), Error);
  EXPECT_THROW(pack_weights(*m, "INT8"), Error);
  pack_weights(*m, "int8");
  EXPECT_THROW(pack_weights(*m, "int8"), Error);  // packing the rounded values again would hide the first rounding
}
