// kv_cache: the inference KV cache (nanochat/engine.py KVCache) that GPT::forward reads and writes. Per-layer keys and
// values in FA3's layout [B, Tmax, Hkv, Dh] (stored as one [L, B, Tmax, Hkv, Dh] tensor each), the filled length of
// each row, and each row's previous normalized token embedding for the smear at decode time.
//
//   KVCache cache(/*batch=*/1, cfg.n_kv_head, /*seq_len=*/T, cfg.n_embd / cfg.n_head, cfg.n_layer, device,
//   torch::kFloat); auto logits = model->forward(prompt, {}, &cache);   // prefill; cache.get_pos() == prompt length
//   KVCache rows(num_samples, ...); rows.prefill(cache);  // clone the batch-1 cache into num_samples rows
//
// nanochat keeps every row at one position, and so does the Engine. Continuous batching (batch_engine.h) needs
// rows at different positions: a forward pass with B rows uses rows [0, B) of the cache (B may be fewer than the
// cache holds), one-token steps may run rows at different positions, and load_row/move_row copy a prefilled
// conversation into a row and keep the live rows packed at the front.
// Not covered: growing the cache, prompts of several tokens into rows at different positions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace nanochat {

struct KVCache {
  torch::Tensor k_cache, v_cache;  // [L, B, Tmax, Hkv, Dh], zero-initialized
  torch::Tensor prev_embedding;    // [B, 1, d] each row's last pre-smear normalized embedding; undefined = none yet
  std::vector<int64_t> positions;  // per row: positions [0, positions[b]) of every layer are filled

  KVCache(int64_t batch_size, int64_t num_heads, int64_t seq_len, int64_t head_dim, int64_t num_layers,
          torch::Device device, torch::Dtype dtype)
      : positions(size_t(batch_size), 0) {
    auto opts = torch::TensorOptions().dtype(dtype).device(device);
    k_cache = torch::zeros({num_layers, batch_size, seq_len, num_heads, head_dim}, opts);
    v_cache = torch::zeros({num_layers, batch_size, seq_len, num_heads, head_dim}, opts);
  }

  int64_t n_layers() const { return k_cache.size(0); }
  int64_t batch_size() const { return k_cache.size(1); }
  int64_t max_seq_len() const { return k_cache.size(2); }
  // The position every row is at; an error when rows differ (use row_pos then).
  int64_t get_pos() const {
    TORCH_CHECK(uniform(batch_size()), "KVCache::get_pos: rows are at different positions");
    return positions[0];
  }
  int64_t row_pos(int64_t b) const { return positions[size_t(b)]; }
  // True when rows [0, rows) are all at one position.
  bool uniform(int64_t rows) const {
    return std::all_of(positions.begin(), positions.begin() + rows, [&](int64_t p) { return p == positions[0]; });
  }
  int64_t max_pos(int64_t rows) const { return *std::max_element(positions.begin(), positions.begin() + rows); }
  void advance(int64_t n) { advance_rows(batch_size(), n); }
  void advance_rows(int64_t rows, int64_t n) {
    for (int64_t b = 0; b < rows; ++b) positions[size_t(b)] += n;
  }
  void reset() {
    std::fill(positions.begin(), positions.end(), 0);
    prev_embedding = torch::Tensor();
  }
  // Views of layer i: [B, Tmax, Hkv, Dh] each; writes through them land in the cache.
  std::pair<torch::Tensor, torch::Tensor> layer(int64_t i) const { return {k_cache[i], v_cache[i]}; }
  // Positions of rows [0, rows) as an int64 tensor on `device`. Every layer of a pass asks for the same one, so
  // the last is kept and reused while the positions are unchanged (one host-to-device copy per step, not per layer).
  torch::Tensor positions_tensor(int64_t rows, torch::Device device) const {
    std::vector<int64_t> want(positions.begin(), positions.begin() + rows);
    if (!positions_dev_.defined() || positions_dev_.device() != device || want != positions_dev_key_) {
      positions_dev_ = torch::tensor(want, torch::kInt64).to(device);
      positions_dev_key_ = std::move(want);
    }
    return positions_dev_;
  }

  // The smear's input for rows [0, rows): their previous embeddings [rows, 1, d], or undefined if there are none.
  torch::Tensor prev_rows(int64_t rows) const {
    return prev_embedding.defined() ? prev_embedding.narrow(0, 0, rows) : torch::Tensor();
  }
  // Sets the previous embeddings of rows [0, e.size(0)) (the other rows keep theirs).
  void set_prev_rows(const torch::Tensor& e) {
    const int64_t rows = e.size(0);
    if (rows == batch_size()) {
      prev_embedding = e;
      return;
    }
    if (!prev_embedding.defined()) prev_embedding = torch::zeros({batch_size(), e.size(1), e.size(2)}, e.options());
    torch::NoGradGuard no_grad;
    prev_embedding.narrow(0, 0, rows).copy_(e);
  }

  // The rotary rows (cos, sin) for a pass of T tokens over rows [0, rows), taken from the model's tables
  // [1, Tmax, 1, Dh/2]: rows at one position continue from it (a slice); rows at different positions (continuous
  // batching, one token each) gather their own row, [rows, 1, 1, Dh/2].
  std::pair<torch::Tensor, torch::Tensor> rotary(const torch::Tensor& cos, const torch::Tensor& sin, int64_t rows,
                                                 int64_t T) const {
    if (uniform(rows)) {
      const int64_t T0 = row_pos(0);
      TORCH_CHECK(T0 + T <= cos.size(1), "sequence length grew beyond the rotary table: ", T0 + T, " > ", cos.size(1));
      return {cos.narrow(1, T0, T), sin.narrow(1, T0, T)};
    }
    TORCH_CHECK(T == 1, "rows of a KV cache at different positions decode one token at a time, got ", T);
    TORCH_CHECK(max_pos(rows) < cos.size(1), "sequence length grew beyond the rotary table: ", max_pos(rows) + 1, " > ",
                cos.size(1));
    const torch::Tensor pos = positions_tensor(rows, cos.device());
    const int64_t half = cos.size(-1);
    return {cos.index_select(1, pos).view({rows, 1, 1, half}), sin.index_select(1, pos).view({rows, 1, 1, half})};
  }

  // The smear of a pass over rows [0, x.size(0)) that continues the cached sequences: smear(cur, prev) mixes each
  // token with the previous one. The first token of the pass smears with the row's previous embedding when there
  // is one — after a decode step, or a prompt continued in chunks (the batch engine's prefill), as one pass would;
  // Python's engine never continues a prefill, so it has only the first case. Remembers the last token's
  // embedding for the next pass.
  template <typename Smear>
  torch::Tensor smear(const torch::Tensor& x, const Smear& smear_fn) {
    const int64_t rows = x.size(0), T = x.size(1);
    auto last = x.narrow(1, T - 1, 1);
    auto prev = prev_rows(rows);
    torch::Tensor out = x;
    if (T > 1 && prev.defined())
      out = smear_fn(x, torch::cat({prev, x.narrow(1, 0, T - 1)}, 1));
    else if (T > 1)
      out = torch::cat({x.narrow(1, 0, 1), smear_fn(x.narrow(1, 1, T - 1), x.narrow(1, 0, T - 1))}, 1);
    else if (prev.defined())
      out = smear_fn(x, prev);
    set_prev_rows(last);  // after the smear has read the previous ones (it may overwrite them in place)
    return out;
  }

  // Copies another (typically batch-1, just prefilled) cache into this one, broadcasting its rows to our batch.
  void prefill(const KVCache& other) {
    TORCH_CHECK(get_pos() == 0, "KVCache::prefill needs an empty cache");
    check_compatible(other);
    TORCH_CHECK(max_seq_len() >= other.max_seq_len(), "KVCache::prefill: destination is shorter than source");
    TORCH_CHECK(other.batch_size() == 1 || other.batch_size() == batch_size(),
                "KVCache::prefill: source batch must be 1 or equal to ours");
    torch::NoGradGuard no_grad;
    int64_t n = other.get_pos();
    k_cache.narrow(2, 0, n).copy_(other.k_cache.narrow(2, 0, n));
    v_cache.narrow(2, 0, n).copy_(other.v_cache.narrow(2, 0, n));
    std::fill(positions.begin(), positions.end(), n);
    if (other.prev_embedding.defined()) {
      auto p = other.prev_embedding;
      prev_embedding = p.expand({batch_size(), p.size(1), p.size(2)}).clone();
    } else {
      prev_embedding = torch::Tensor();
    }
  }

  // Copies row src_row of src (its filled positions and previous embedding) into row `row` of this cache, which
  // takes src's position. src may be this cache (move_row).
  void load_row(int64_t row, const KVCache& src, int64_t src_row = 0) {
    check_compatible(src);
    const int64_t n = src.row_pos(src_row);
    TORCH_CHECK(n <= max_seq_len(), "KVCache::load_row: ", n, " positions do not fit in ", max_seq_len());
    torch::NoGradGuard no_grad;
    if (&src != this || row != src_row) {
      k_cache.select(1, row).narrow(1, 0, n).copy_(src.k_cache.select(1, src_row).narrow(1, 0, n));
      v_cache.select(1, row).narrow(1, 0, n).copy_(src.v_cache.select(1, src_row).narrow(1, 0, n));
      if (src.prev_embedding.defined()) {
        const torch::Tensor p = src.prev_embedding[src_row];
        if (!prev_embedding.defined()) prev_embedding = torch::zeros({batch_size(), p.size(0), p.size(1)}, p.options());
        prev_embedding[row].copy_(p);
      }
    }
    positions[size_t(row)] = n;
  }
  void move_row(int64_t from, int64_t to) { load_row(to, *this, from); }

 private:
  mutable torch::Tensor positions_dev_;  // positions_tensor's last answer, for positions_dev_key_
  mutable std::vector<int64_t> positions_dev_key_;
  void check_compatible(const KVCache& other) const {
    TORCH_CHECK(n_layers() == other.n_layers() && k_cache.size(3) == other.k_cache.size(3) &&
                    k_cache.size(4) == other.k_cache.size(4),
                "KVCache: layer count, kv heads and head dim must match");
  }
};

}  // namespace nanochat
