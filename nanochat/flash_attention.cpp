// flash_attention: see flash_attention.h.
#include "nanochat/flash_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "nanochat/common.h"
#include "nanochat/compute.h"

namespace nanochat {

namespace {

// [B,T,Hkv,D] -> [B,T,H,D] by repeating each kv head H/Hkv times (kv head j serves query heads j*g .. j*g+g-1,
// the repeat_interleave order SDPA's enable_gqa uses). No copy when H == Hkv.
torch::Tensor expand_kv(const torch::Tensor& x, int64_t n_head) {
  int64_t B = x.size(0), T = x.size(1), Hkv = x.size(2), D = x.size(3);
  if (Hkv == n_head) return x;
  TORCH_CHECK(n_head % Hkv == 0, "query heads must be a multiple of kv heads");
  return x.unsqueeze(3).expand({B, T, Hkv, n_head / Hkv, D}).reshape({B, T, n_head, D});
}

// Additive mask (0 where allowed, -inf where not) for query rows at absolute positions p0..p0+nq-1 against
// keys c0..c0+nk-1; undefined when every pair is allowed (no masking work needed).
torch::Tensor block_mask(int64_t p0, int64_t nq, int64_t c0, int64_t nk, int64_t window,
                         const torch::TensorOptions& opts) {
  int64_t p_first = p0, p_last = p0 + nq - 1, c_first = c0, c_last = c0 + nk - 1;
  bool causal_ok = c_last <= p_first;                         // every key is at or before every query
  bool window_ok = window < 0 || p_last - c_first <= window;  // every key is inside every query's window
  if (causal_ok && window_ok) return {};
  auto iopts = torch::TensorOptions().dtype(torch::kLong).device(opts.device());
  auto rows = torch::arange(p0, p0 + nq, iopts).unsqueeze(1);
  auto cols = torch::arange(c0, c0 + nk, iopts).unsqueeze(0);
  auto allowed = cols <= rows;
  if (window >= 0) allowed = allowed & ((rows - cols) <= window);
  return torch::zeros({nq, nk}, opts).masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

// The blocked kernel as one autograd node: forward keeps each block's softmax probabilities, backward walks
// the same blocks (dV += Pᵀ·dO, dS = P ∘ (dO·Vᵀ − rowsum), dQ = dS·K, dK += dSᵀ·Q), so no per-block slice
// gradients are allocated and zero-filled at full size. q [BH,Tq,D], k/v [BH,Tk,D], queries are the last Tq.
struct BlockedAttention : torch::autograd::Function<BlockedAttention> {
  // 128-row query blocks: small enough to skip most of the causal triangle and everything outside a window,
  // large enough that each bmm stays efficient.
  static int64_t block_rows(int64_t Tq) { return Tq <= 128 ? Tq : 128; }
  // Key range [c0, c1) that query rows [r0, r0+nq) can reach.
  static std::pair<int64_t, int64_t> key_range(int64_t r0, int64_t nq, int64_t off, int64_t window) {
    int64_t p0 = off + r0;
    return {window < 0 ? 0 : std::max<int64_t>(0, p0 - window), p0 + nq};
  }

  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qt, const torch::Tensor& kt,
                               const torch::Tensor& vt, int64_t window) {
    const int64_t Tq = qt.size(1), Tk = kt.size(1), D = qt.size(2), off = Tk - Tq, block = block_rows(Tq);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto out = torch::empty_like(qt);
    std::vector<torch::Tensor> probs;
    for (int64_t r0 = 0; r0 < Tq; r0 += block) {
      int64_t nq = std::min(block, Tq - r0);
      auto [c0, c1] = key_range(r0, nq, off, window);
      auto qb = qt.narrow(1, r0, nq), kb = kt.narrow(1, c0, c1 - c0), vb = vt.narrow(1, c0, c1 - c0);
      auto mask = block_mask(off + r0, nq, c0, c1 - c0, window, qt.options());
      auto scores = mask.defined() ? torch::baddbmm(mask, qb, kb.transpose(1, 2), 1.0, scale)
                                   : torch::bmm(qb, kb.transpose(1, 2)).mul_(scale);
      auto p = torch::softmax(scores, -1);
      out.narrow(1, r0, nq).copy_(torch::bmm(p, vb));
      probs.push_back(p);
    }
    ctx->save_for_backward({qt, kt, vt});
    ctx->saved_data["probs"] = probs;
    ctx->saved_data["window"] = window;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto qt = saved[0], kt = saved[1], vt = saved[2];
    auto probs = ctx->saved_data["probs"].toTensorVector();
    int64_t window = ctx->saved_data["window"].toInt();
    const int64_t Tq = qt.size(1), Tk = kt.size(1), D = qt.size(2), off = Tk - Tq, block = block_rows(Tq);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto dout = grad_out[0].contiguous();
    auto dq = torch::empty_like(qt), dk = torch::zeros_like(kt), dv = torch::zeros_like(vt);
    size_t i = 0;
    for (int64_t r0 = 0; r0 < Tq; r0 += block, ++i) {
      int64_t nq = std::min(block, Tq - r0);
      auto [c0, c1] = key_range(r0, nq, off, window);
      auto qb = qt.narrow(1, r0, nq), kb = kt.narrow(1, c0, c1 - c0), vb = vt.narrow(1, c0, c1 - c0);
      auto& p = probs[i];
      auto dob = dout.narrow(1, r0, nq);
      dv.narrow(1, c0, c1 - c0).add_(torch::bmm(p.transpose(1, 2), dob));
      auto ds = torch::bmm(dob, vb.transpose(1, 2));  // dP
      ds.sub_((ds * p).sum(-1, true)).mul_(p);        // softmax backward; zero where masked
      dq.narrow(1, r0, nq).copy_(torch::bmm(ds, kb).mul_(scale));
      dk.narrow(1, c0, c1 - c0).add_(torch::bmm(ds.transpose(1, 2), qb).mul_(scale));
    }
    return {dq, dk, dv, torch::Tensor()};
  }
};

// CUDA: libtorch's FlashAttention-2 kernels, which take the window natively (window_size_left, with right = 0 for
// causal) and GQA without expanding k/v, in the [B, T, heads, D] layout we already use. Queries are the last Tq
// positions (FA2 aligns the causal mask bottom-right), so the same call serves training and KV-cache prefill. One
// autograd node: forward keeps the output and the log-sum-exp, backward is FA2's own.
struct FlashAttention : torch::autograd::Function<FlashAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, int64_t window) {
    const int64_t Tq = q.size(1), Tk = k.size(1);
    auto [out, lse, rng, unused, debug] = at::_flash_attention_forward(
        q, k, v, std::nullopt, std::nullopt, Tq, Tk, 0.0, /*is_causal=*/true, /*return_debug_mask=*/false,
        std::nullopt, window < 0 ? std::optional<int64_t>() : window, int64_t{0});
    ctx->save_for_backward({q, k, v, out, lse, rng, unused});
    ctx->saved_data["window"] = window;
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto s = ctx->get_saved_variables();
    const int64_t window = ctx->saved_data["window"].toInt(), Tq = s[0].size(1), Tk = s[1].size(1);
    auto [dq, dk, dv] = at::_flash_attention_backward(
        grad_out[0].contiguous(), s[0], s[1], s[2], s[3], s[4], torch::Tensor(), torch::Tensor(), Tq, Tk, 0.0,
        /*is_causal=*/true, s[5], s[6], std::nullopt, window < 0 ? std::optional<int64_t>() : window, int64_t{0});
    return {dq, dk, dv, torch::Tensor()};
  }
};

// Whether the flash kernels take these tensors: fp16/bf16 with a head dim they were built for. A GPU they do not
// support (before sm80) answers with an error on the first call; from then on every call takes SDPA (logged once).
std::atomic<bool> flash_unavailable{false};
bool flash_applies(const torch::Tensor& q) {
  const auto dt = q.scalar_type();
  const int64_t D = q.size(3);
  return !flash_unavailable.load(std::memory_order_relaxed) && (dt == torch::kBFloat16 || dt == torch::kHalf) &&
         D % 8 == 0 && D <= 256;
}

// nanochat's SDPA fallback (nanochat/flash_attention.py _sdpa_attention), for CUDA tensors. q/k/v are [B,H,T,D].
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t window) {
  int64_t Tq = q.size(2), Tk = k.size(2);
  if ((window < 0 || window >= Tq) && Tq == Tk)
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  if (Tq == 1) {
    if (window >= 0 && window < Tk) {
      int64_t start = std::max<int64_t>(0, Tk - (window + 1));
      return at::scaled_dot_product_attention(q, k.narrow(2, start, Tk - start), v.narrow(2, start, Tk - start), {},
                                              0.0, false);
    }
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false);
  }
  auto iopts = torch::TensorOptions().dtype(torch::kLong).device(q.device());
  auto rows = (Tk - Tq) + torch::arange(Tq, iopts).unsqueeze(1);
  auto cols = torch::arange(Tk, iopts).unsqueeze(0);
  auto mask = cols <= rows;
  if (window >= 0 && window < Tk) mask = mask & ((rows - cols) <= window);
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
}

}  // namespace

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  int64_t window) {
  int64_t Tq = q.size(1), Tk = k.size(1), H = q.size(2), D = q.size(3);
  auto qt = q.transpose(1, 2);
  auto kt = expand_kv(k, H).transpose(1, 2);
  auto vt = expand_kv(v, H).transpose(1, 2);
  auto scores = torch::matmul(qt, kt.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(D)));
  auto iopts = torch::TensorOptions().dtype(torch::kLong).device(q.device());
  auto rows = (Tk - Tq) + torch::arange(Tq, iopts).unsqueeze(1);
  auto cols = torch::arange(Tk, iopts).unsqueeze(0);
  auto allowed = cols <= rows;
  if (window >= 0) allowed = allowed & ((rows - cols) <= window);
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::matmul(torch::softmax(scores, -1), vt).transpose(1, 2);
}

torch::Tensor windowed_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 int64_t window) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects [B, T, heads, head_dim] tensors");
  int64_t B = q.size(0), Tq = q.size(1), H = q.size(2), D = q.size(3), Tk = k.size(1);
  TORCH_CHECK(Tk >= Tq, "attention needs at least as many keys as queries");
  if (q.is_cuda()) {
    if (flash_applies(q)) {
      try {
        // FA2 takes any strides but the last (a narrowed KV cache needs no copy).
        auto unit_last = [](const torch::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); };
        return FlashAttention::apply(unit_last(q), unit_last(k), unit_last(v), window);
      } catch (const c10::OutOfMemoryError&) {
        throw;  // a real error of this call, not a kernel this GPU lacks
      } catch (const c10::Error& e) {
        flash_unavailable = true;
        std::string why = e.what_without_backtrace();
        print0f("FlashAttention kernels unavailable on this GPU ({}): using SDPA with a mask",
                why.substr(0, why.find('\n')));
      }
    }
    auto y =
        sdpa_attention(q.transpose(1, 2), expand_kv(k, H).transpose(1, 2), expand_kv(v, H).transpose(1, 2), window);
    return y.transpose(1, 2);
  }
  // [B*H, T, D] contiguous, so every block below is a plain strided bmm.
  auto qt = q.transpose(1, 2).reshape({B * H, Tq, D});
  auto kt = expand_kv(k, H).transpose(1, 2).reshape({B * H, Tk, D});
  auto vt = expand_kv(v, H).transpose(1, 2).reshape({B * H, Tk, D});
  auto y = BlockedAttention::apply(qt, kt, vt, window);
  return y.view({B, H, Tq, D}).transpose(1, 2);
}

torch::Tensor flash_attn_func(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              int64_t window_left) {
  return windowed_attention(q, k, v, window_left);
}

torch::Tensor flash_attn_with_kvcache(const torch::Tensor& q, const torch::Tensor& k_cache,
                                      const torch::Tensor& v_cache, const torch::Tensor& k, const torch::Tensor& v,
                                      int64_t pos, int64_t window_left) {
  int64_t Tn = q.size(1);
  TORCH_CHECK(pos + Tn <= k_cache.size(1), "KV cache is full: ", pos, " + ", Tn, " > ", k_cache.size(1));
  {
    torch::NoGradGuard no_grad;
    k_cache.narrow(1, pos, Tn).copy_(k);
    v_cache.narrow(1, pos, Tn).copy_(v);
  }
  auto k_full = k_cache.narrow(1, 0, pos + Tn);
  auto v_full = v_cache.narrow(1, 0, pos + Tn);
  return windowed_attention(q, k_full.to(q.scalar_type()), v_full.to(q.scalar_type()), window_left);
}

torch::Tensor flash_attn_with_kvcache_rows(const torch::Tensor& q, const torch::Tensor& k_cache,
                                           const torch::Tensor& v_cache, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& positions, int64_t max_pos, int64_t window_left) {
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3);
  TORCH_CHECK(q.size(1) == 1, "flash_attn_with_kvcache_rows takes one query per row, got ", q.size(1));
  TORCH_CHECK(positions.numel() == B, "flash_attn_with_kvcache_rows: one position per row");
  const int64_t Tk = max_pos + 1;  // keys any row can reach
  TORCH_CHECK(Tk <= k_cache.size(1), "KV cache is full: ", Tk, " > ", k_cache.size(1));
  const torch::Tensor rows = torch::arange(B, positions.options());
  {
    torch::NoGradGuard no_grad;
    // index_put_ does not convert: an fp32 model may decode into a bf16 cache (CUDA's default).
    k_cache.index_put_({rows, positions}, k.select(1, 0).to(k_cache.scalar_type()));
    v_cache.index_put_({rows, positions}, v.select(1, 0).to(v_cache.scalar_type()));
  }
  // Scores of each row's query against keys [0, Tk), masked per row to its own causal window.
  auto kf = expand_kv(k_cache.narrow(1, 0, Tk), H).to(q.scalar_type()).transpose(1, 2);  // [B,H,Tk,D]
  auto vf = expand_kv(v_cache.narrow(1, 0, Tk), H).to(q.scalar_type()).transpose(1, 2);
  auto scores = torch::matmul(q.transpose(1, 2), kf.transpose(2, 3)).to(torch::kFloat) / std::sqrt(double(D));
  auto cols = torch::arange(Tk, positions.options()).unsqueeze(0);  // [1, Tk]
  auto p = positions.unsqueeze(1);                                  // [B, 1]
  auto allowed = cols <= p;
  if (window_left >= 0) allowed = allowed & ((p - cols) <= window_left);
  scores = scores.masked_fill(allowed.logical_not().view({B, 1, 1, Tk}), -std::numeric_limits<double>::infinity());
  auto probs = torch::softmax(scores, -1).to(q.scalar_type());
  return torch::matmul(probs, vf).transpose(1, 2);  // [B,1,H,D]
}

}  // namespace nanochat
