// kv_cache: the inference KV cache (SPEC §14.1) that GPT::forward reads and writes. Per-layer keys and values
// in FA3's layout [B, Tmax, Hkv, Dh] (stored as one [L, B, Tmax, Hkv, Dh] tensor each), one position shared by
// the whole batch, and the previous token's normalized embedding for the smear at decode time.
//
//   KVCache cache(/*batch=*/1, cfg.n_kv_head, /*seq_len=*/T, cfg.n_embd / cfg.n_head, cfg.n_layer, device, torch::kFloat);
//   auto logits = model->forward(prompt, {}, &cache);   // prefill; cache.get_pos() == prompt length
//   KVCache rows(num_samples, ...); rows.prefill(cache);  // clone the batch-1 cache into num_samples rows
//
// Not covered: per-row positions (nanochat keeps them uniform), growing the cache.
#pragma once

#include <cstdint>
#include <utility>

#include <torch/torch.h>

namespace nanochat {

struct KVCache {
  torch::Tensor k_cache, v_cache;  // [L, B, Tmax, Hkv, Dh], zero-initialized
  torch::Tensor prev_embedding;    // [B, 1, d] last pre-smear normalized embedding; undefined = none yet
  int64_t pos = 0;                 // rows [0, pos) of every layer are filled

  KVCache(int64_t batch_size, int64_t num_heads, int64_t seq_len, int64_t head_dim, int64_t num_layers,
          torch::Device device, torch::Dtype dtype) {
    auto opts = torch::TensorOptions().dtype(dtype).device(device);
    k_cache = torch::zeros({num_layers, batch_size, seq_len, num_heads, head_dim}, opts);
    v_cache = torch::zeros({num_layers, batch_size, seq_len, num_heads, head_dim}, opts);
  }

  int64_t n_layers() const { return k_cache.size(0); }
  int64_t batch_size() const { return k_cache.size(1); }
  int64_t max_seq_len() const { return k_cache.size(2); }
  int64_t get_pos() const { return pos; }
  void advance(int64_t n) { pos += n; }
  void reset() {
    pos = 0;
    prev_embedding = torch::Tensor();
  }
  // Views of layer i: [B, Tmax, Hkv, Dh] each; writes through them land in the cache.
  std::pair<torch::Tensor, torch::Tensor> layer(int64_t i) const { return {k_cache[i], v_cache[i]}; }

  // Copies another (typically batch-1, just prefilled) cache into this one, broadcasting its rows to our batch.
  void prefill(const KVCache& other) {
    TORCH_CHECK(pos == 0, "KVCache::prefill needs an empty cache");
    TORCH_CHECK(n_layers() == other.n_layers() && k_cache.size(3) == other.k_cache.size(3) &&
                    k_cache.size(4) == other.k_cache.size(4),
                "KVCache::prefill: layer count, kv heads and head dim must match");
    TORCH_CHECK(max_seq_len() >= other.max_seq_len(), "KVCache::prefill: destination is shorter than source");
    TORCH_CHECK(other.batch_size() == 1 || other.batch_size() == batch_size(),
                "KVCache::prefill: source batch must be 1 or equal to ours");
    torch::NoGradGuard no_grad;
    int64_t n = other.pos;
    k_cache.narrow(2, 0, n).copy_(other.k_cache.narrow(2, 0, n));
    v_cache.narrow(2, 0, n).copy_(other.v_cache.narrow(2, 0, n));
    pos = n;
    if (other.prev_embedding.defined()) {
      auto p = other.prev_embedding;
      prev_embedding = p.expand({batch_size(), p.size(1), p.size(2)}).clone();
    } else {
      prev_embedding = torch::Tensor();
    }
  }
};

}  // namespace nanochat
