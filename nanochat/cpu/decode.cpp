// decode: see decode.h.
#include "nanochat/cpu/decode.h"

#include "nanochat/cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nanochat/cpu/simd.h"
#include "nanochat/cpu/small_linear.h"

namespace nanochat {

namespace {

constexpr float kEps = std::numeric_limits<float>::epsilon();  // rms_norm's eps for fp32
// Multiply-adds of q·k per attention task. Splitting a depth-6 layer's heads between two threads at 100 keys made
// attention slower (0.23 -> 0.36 ms a token): each thread then reads half of every cache row.
constexpr int64_t kMinAttendTaskMacs = int64_t{1} << 16;

const float* ptr(const torch::Tensor& t) { return t.data_ptr<float>(); }
const float* ptr(const CastLinear& l) { return l->weight.data_ptr<float>(); }

float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

// y[B, N] = x[B, K] · W[N, K]ᵀ: the streaming kernel for a few rows, BLAS's gemm (on views of the same buffers)
// once there are enough rows for arithmetic, not bandwidth, to dominate.
// A packed copy (pack_weights) is streamed instead of the fp32 weight for the few-row kernel only: gemm's
// arithmetic-bound rows read the fp32 weight, which holds the same values.
void linear_into(const float* x, int64_t B, const CastLinear& l, float* y) {
  const int64_t N = l->weight.size(0), K = l->weight.size(1);
  if (B <= kSmallLinearMaxRows) {
    if (!l->packed.defined()) return small_linear_into(x, B, ptr(l), N, K, y);
    if (l->packed.scalar_type() == torch::kChar)
      return small_linear_into(x, B, l->packed.data_ptr<int8_t>(), ptr(l->packed_scale), N, K, y);
    return small_linear_into(x, B, l->packed.data_ptr<c10::BFloat16>(), N, K, y);
  }
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  torch::Tensor out = torch::from_blob(y, {B, N}, opts);
  at::mm_out(out, torch::from_blob(const_cast<float*>(x), {B, K}, opts), l->weight.t());
}

// y = x / sqrt(mean(x²) + eps) · scale over n floats (y may alias x).
void rms_norm_into(const float* x, float* y, int64_t n, float scale = 1.0f) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(float(ss / double(n)) + kEps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * scale;
}

// nanochat's rotary convention on one head: y1 = x1·cos + x2·sin, y2 = x2·cos − x1·sin, halves of D/2.
void rotate_into(float* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t j = 0; j < half; ++j) {
    const float x1 = x[j], x2 = x[j + half];
    x[j] = x1 * cos[j] + x2 * sin[j];
    x[j + half] = x2 * cos[j] - x1 * sin[j];
  }
}

// Query heads [h0, h1) of one row against keys [t0, t1): y_h = Σ_t softmax_t(q_h·k_t · scale) v_t, head h reading
// kv head h / group. k and v point at position 0 of the row; a position's keys (and values) for all kv heads sit in
// one row of `stride` floats (the cache's [Tmax, Hkv, D] layout). Positions are the outer loop and heads the inner,
// so the cache is read front to back once per layer. One head at a time strided through it instead, waiting on a
// cache miss per key once the weights streamed past had evicted it (0.44 -> 0.23 ms of a depth-6 int8 token at 100
// keys). scores is scratch for (h1 − h0)·(t1 − t0) floats. Each head's sums run in position order, as one head at a
// time would. V is the register width of the instruction set the caller is compiled for (a 16-lane vector in an
// AVX2 function is lowered through the stack, which made this loop 16% of an AVX2 decode step at a few hundred keys).
template <typename V>
__attribute__((always_inline)) inline void attend_heads_v(const float* q, const float* k, const float* v,
                                                          int64_t stride, int64_t t0, int64_t t1, int64_t h0,
                                                          int64_t h1, int64_t group, int64_t D, float scale,
                                                          float* scores, float* y) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  const int64_t D_vec = D / L * L, n = t1 - t0;
  for (int64_t t = t0; t < t1; ++t) {
    const float* kt = k + t * stride;
    for (int64_t h = h0; h < h1; ++h) {
      const float *qh = q + h * D, *kh = kt + h / group * D;
      V acc = {};
      for (int64_t j = 0; j < D_vec; j += L) {
        V qv, kv;
        __builtin_memcpy(&qv, qh + j, sizeof(V));
        __builtin_memcpy(&kv, kh + j, sizeof(V));
        acc += qv * kv;
      }
      float dot = 0;
      for (int64_t l = 0; l < L; ++l) dot += acc[l];
      for (int64_t j = D_vec; j < D; ++j) dot += qh[j] * kh[j];
      scores[(h - h0) * n + (t - t0)] = dot * scale;
    }
  }
  for (int64_t h = h0; h < h1; ++h) {
    float* s = scores + (h - h0) * n;
    const float mx = *std::max_element(s, s + n);
    float sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (s[i] = std::exp(s[i] - mx));
    for (int64_t i = 0; i < n; ++i) s[i] /= sum;
    std::fill(y + h * D, y + (h + 1) * D, 0.0f);
  }
  for (int64_t t = t0; t < t1; ++t) {
    const float* vt = v + t * stride;
    for (int64_t h = h0; h < h1; ++h) {
      const float p = scores[(h - h0) * n + (t - t0)], *vh = vt + h / group * D;
      float* yh = y + h * D;
      for (int64_t j = 0; j < D; ++j) yh[j] += p * vh[j];
    }
  }
}

using AttendHeads = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, float, float*, float*);
#if defined(__x86_64__)
__attribute__((target("avx512f"))) void attend_heads_avx512(const float* q, const float* k, const float* v,
                                                            int64_t stride, int64_t t0, int64_t t1, int64_t h0,
                                                            int64_t h1, int64_t group, int64_t D, float scale,
                                                            float* scores, float* y) {
  attend_heads_v<simd::Vec16>(q, k, v, stride, t0, t1, h0, h1, group, D, scale, scores, y);
}
__attribute__((target("avx2"))) void attend_heads_avx2(const float* q, const float* k, const float* v, int64_t stride,
                                                       int64_t t0, int64_t t1, int64_t h0, int64_t h1, int64_t group,
                                                       int64_t D, float scale, float* scores, float* y) {
  attend_heads_v<simd::Vec8>(q, k, v, stride, t0, t1, h0, h1, group, D, scale, scores, y);
}
#endif
void attend_heads_base(const float* q, const float* k, const float* v, int64_t stride, int64_t t0, int64_t t1,
                       int64_t h0, int64_t h1, int64_t group, int64_t D, float scale, float* scores, float* y) {
  attend_heads_v<simd::Vec4>(q, k, v, stride, t0, t1, h0, h1, group, D, scale, scores, y);
}

// The widest version this CPU runs, picked once.
void attend_heads(const float* q, const float* k, const float* v, int64_t stride, int64_t t0, int64_t t1, int64_t h0,
                  int64_t h1, int64_t group, int64_t D, float scale, float* scores, float* y) {
  static const AttendHeads kernel = [] {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return attend_heads_avx512;
    if (__builtin_cpu_supports("avx2")) return attend_heads_avx2;
#endif
    return attend_heads_base;
  }();
  kernel(q, k, v, stride, t0, t1, h0, h1, group, D, scale, scores, y);
}

}  // namespace

bool decode_step_applies(const GPTImpl& model, const torch::Tensor& idx, const KVCache& cache) {
  if (!model.fused_decode || torch::GradMode::is_enabled()) return false;
  if (idx.dim() != 2 || idx.size(1) != 1 || idx.size(0) < 1) return false;
  if (!idx.device().is_cpu() || idx.scalar_type() != torch::kLong) return false;
  const int64_t B = idx.size(0), d = model.config.n_embd;
  auto fp32_cpu = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
  };
  if (cache.batch_size() < B || !fp32_cpu(cache.k_cache) || !fp32_cpu(cache.v_cache)) return false;
  const auto& prev = cache.prev_embedding;
  if (prev.defined() && (prev.size(0) != cache.batch_size() || prev.numel() != prev.size(0) * d ||
                         !prev.device().is_cpu() || prev.scalar_type() != torch::kFloat))
    return false;
  if (!fp32_cpu(model.rotary_cos) || !fp32_cpu(model.rotary_sin)) return false;
  for (int64_t b = 0; b < B; ++b)  // the generic path reports a full cache or a position beyond the rotary table
    if (cache.row_pos(b) + 1 > cache.max_seq_len() || cache.row_pos(b) >= model.rotary_cos.size(1)) return false;
  for (const auto& p : model.parameters())
    if (!fp32_cpu(p)) return false;
  return true;
}

torch::Tensor decode_step(const GPTImpl& m, const torch::Tensor& idx, KVCache& cache) {
  const GPTConfig& c = m.config;
  const int64_t B = idx.size(0), d = c.n_embd, H = c.n_head, Hkv = c.n_kv_head, D = d / H, kv = Hkv * D;
  const int64_t L = c.n_layer, Tmax = cache.max_seq_len(), group = H / Hkv;
  const torch::Tensor ids_t = idx.contiguous();  // a column sliced from a [B, T] tensor is strided
  const int64_t* ids = ids_t.data_ptr<int64_t>();
  std::vector<float> x(B * d), x0(B * d), xn(B * d), q(B * d), k(B * kv), v(B * kv), att(B * d), proj(B * d),
      hidden(B * 4 * d), x_backout(B * d);

  // Normed token embedding; it is also the next step's smear input.
  for (int64_t b = 0; b < B; ++b) rms_norm_into(ptr(m.wte->weight) + ids[b] * d, &x[b * d], d);
  torch::Tensor embedding = torch::from_blob(x.data(), {B, 1, d}, torch::kFloat).clone();
  if (cache.prev_embedding.defined()) {
    // Smear: x += smear_lambda · sigmoid(smear_gate · x[:24]) · previous embedding.
    const torch::Tensor prev_t = cache.prev_rows(B).contiguous();  // the generic path leaves a strided view
    const float* prev = ptr(prev_t);
    const float lambda = ptr(m.smear_lambda)[0], *gate_w = ptr(m.smear_gate);
    for (int64_t b = 0; b < B; ++b) {
      float dot = 0;
      for (int64_t j = 0; j < 24; ++j) dot += gate_w[j] * x[b * d + j];
      const float gate = lambda * sigmoid(dot);
      for (int64_t j = 0; j < d; ++j) x[b * d + j] += gate * prev[b * d + j];
    }
  }
  cache.set_prev_rows(embedding);
  x0 = x;

  // Each row sits at its own position (rows of a continuous batch differ): its rotary row, cache slot and window.
  const float scale = 1.0f / std::sqrt(float(D));
  std::vector<int64_t> pos(cache.positions.begin(), cache.positions.begin() + B);
  auto cos = [&](int64_t b) { return ptr(m.rotary_cos) + pos[size_t(b)] * (D / 2); };
  auto sin = [&](int64_t b) { return ptr(m.rotary_sin) + pos[size_t(b)] * (D / 2); };
  const int64_t backout_layer = L / 2;
  for (int64_t i = 0; i < L; ++i) {
    const auto& attn = m.blocks[size_t(i)]->attn;
    const auto& mlp = m.blocks[size_t(i)]->mlp;
    const float rl = ptr(m.resid_lambdas)[i], xl = ptr(m.x0_lambdas)[i];
    for (int64_t j = 0; j < B * d; ++j) x[j] = rl * x[j] + xl * x0[j];

    // Attention: q/k/v of the normed stream, value embedding, rotary, QK-norm, cache write, softmax over the window.
    for (int64_t b = 0; b < B; ++b) rms_norm_into(&x[b * d], &xn[b * d], d);
    linear_into(xn.data(), B, attn->c_q, q.data());
    linear_into(xn.data(), B, attn->c_k, k.data());
    linear_into(xn.data(), B, attn->c_v, v.data());
    if (auto it = m.ve_by_layer.find(i); it != m.ve_by_layer.end()) {
      const float *table = ptr(it->second->weight), *gate_w = ptr(attn->ve_gate);
      const int64_t C = CausalSelfAttentionImpl::kVeGateChannels;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t g = 0; g < Hkv; ++g) {
          float dot = 0;
          for (int64_t j = 0; j < C; ++j) dot += gate_w[g * C + j] * xn[b * d + j];
          const float gate = 3.0f * sigmoid(dot);
          const float* ve = table + ids[b] * kv + g * D;
          for (int64_t j = 0; j < D; ++j) v[b * kv + g * D + j] += gate * ve[j];
        }
    }
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        float* qh = &q[b * d + h * D];
        rotate_into(qh, cos(b), sin(b), D / 2);
        rms_norm_into(qh, qh, D, 1.2f);
      }
      for (int64_t g = 0; g < Hkv; ++g) {
        float* kg = &k[b * kv + g * D];
        rotate_into(kg, cos(b), sin(b), D / 2);
        rms_norm_into(kg, kg, D, 1.2f);
      }
    }
    float* k_layer = cache.k_cache.data_ptr<float>() + i * cache.k_cache.stride(0);  // [B, Tmax, Hkv, D]
    float* v_layer = cache.v_cache.data_ptr<float>() + i * cache.v_cache.stride(0);
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(&k[b * kv], kv, k_layer + (b * Tmax + pos[size_t(b)]) * kv);
      std::copy_n(&v[b * kv], kv, v_layer + (b * Tmax + pos[size_t(b)]) * kv);
    }
    const int64_t window = m.window_sizes[size_t(i)].first;
    auto keys = [&](int64_t b) {  // [t0, t1): the keys row b attends to
      const int64_t p = pos[size_t(b)];
      return std::pair<int64_t, int64_t>{window < 0 ? 0 : std::max<int64_t>(0, p - window), p + 1};
    };
    int64_t longest = 1;
    for (int64_t b = 0; b < B; ++b) longest = std::max(longest, keys(b).second - keys(b).first);
    // Heads run on one thread until the window holds enough keys to repay another; a task takes a run of heads
    // of one row, which reads that row's cache once.
    const int64_t grain = std::max<int64_t>(1, kMinAttendTaskMacs / (longest * D));
    at::parallel_for(0, B * H, grain, [&](int64_t r0, int64_t r1) {
      std::vector<float> scores(static_cast<size_t>(std::min(r1 - r0, H) * longest));
      for (int64_t r = r0; r < r1;) {
        const int64_t b = r / H, h0 = r % H, h1 = std::min(H, h0 + (r1 - r));
        const auto [t0, t1] = keys(b);
        attend_heads(&q[b * d], k_layer + b * Tmax * kv, v_layer + b * Tmax * kv, kv, t0, t1, h0, h1, group, D, scale,
                     scores.data(), &att[b * d]);
        r += h1 - h0;
      }
    });
    linear_into(att.data(), B, attn->c_proj, proj.data());
    for (int64_t j = 0; j < B * d; ++j) x[j] += proj[j];

    // MLP: relu(x W_fc)² W_proj.
    for (int64_t b = 0; b < B; ++b) rms_norm_into(&x[b * d], &xn[b * d], d);
    linear_into(xn.data(), B, mlp->c_fc, hidden.data());
    for (float& h : hidden) h = h > 0 ? h * h : 0.0f;
    linear_into(hidden.data(), B, mlp->c_proj, proj.data());
    for (int64_t j = 0; j < B * d; ++j) x[j] += proj[j];
    if (i == backout_layer) x_backout = x;
  }
  cache.advance_rows(B, 1);

  const float backout = ptr(m.backout_lambda)[0];
  for (int64_t j = 0; j < B * d; ++j) x[j] -= backout * x_backout[j];
  torch::Tensor out = torch::empty({B, 1, d}, torch::kFloat);
  for (int64_t b = 0; b < B; ++b) rms_norm_into(&x[b * d], out.data_ptr<float>() + b * d, d);
  return out;
}

}  // namespace nanochat
