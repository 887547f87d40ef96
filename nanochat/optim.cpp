// optim: see optim.h. The two fused steps below keep the reference's order of operations and dtypes: the
// hyper-parameters are 0-d fp32 CPU tensors (so e.g. 1 - beta1 is computed in fp32), and the Muon step casts
// momentum to the gradient's dtype and beta2, lr, wd to the orthogonalized update's dtype (bf16).
#include "nanochat/optim.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "nanochat/common.h"
#include "nanochat/compute.h"

namespace nanochat {

const char* group_kind_name(GroupKind kind) { return kind == GroupKind::adamw ? "adamw" : "muon"; }

namespace {

// A 0-d fp32 CPU tensor holding value, as the reference's fill_() of its scalar tensors makes it.
torch::Tensor scalar_f32(double value) { return torch::full({}, value, torch::dtype(torch::kFloat32)); }

// 1 - t for a 0-d tensor, in t's dtype (Python's `1 - t`).
torch::Tensor one_minus(const torch::Tensor& t) { return torch::rsub(t, 1); }

// The value of a 0-d tensor as a Scalar for ops that take one (lerp weight, add alpha). A double holds any
// fp32/bf16 value exactly, and those ops round it back to the operand's dtype, as a 0-d tensor weight would be.
double value_of(const torch::Tensor& t) { return t.item<double>(); }

// Frobenius norm over the last two dims, keepdim — what Python's Tensor.norm(dim=(-2, -1)) computes.
torch::Tensor frobenius_norm_last2(const torch::Tensor& X) {
  return torch::linalg_vector_norm(X, 2, std::vector<int64_t>{-2, -1}, /*keepdim=*/true);
}

// Whether libtorch's CPU bf16 matmul has a fast kernel here: oneDNN's, which needs AVX-512 (BW/VL/DQ) or newer.
bool cpu_has_bf16_gemm() {
#if defined(__x86_64__)
  static const bool yes =
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return yes;
#else
  return true;
#endif
}

// A bf16 matmul as bf16 hardware computes it: exact products, fp32 accumulation, one rounding of the result. On CPUs
// without a fast bf16 kernel (AVX2-only: many laptops, AMD Zen 2/3) libtorch falls back to a scalar loop ~15x slower
// than its fp32 GEMM, which made Polar Express most of a training step there; widening the operands to fp32 (exact),
// the fp32 GEMM and rounding back give the same numbers up to summation order.
torch::Tensor matmul_bf16(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.is_cpu() && a.scalar_type() == torch::kBFloat16 && !cpu_has_bf16_gemm())
    return torch::matmul(a.to(torch::kFloat32), b.to(torch::kFloat32)).to(torch::kBFloat16);
  return torch::matmul(a, b);
}

// Polar Express coefficients (num_iters=5, safety factor 2e-2, cushion 2), https://arxiv.org/pdf/2505.16932
constexpr double kPolarExpress[5][3] = {
    {8.156554524902461, -22.48329292557795, 15.878769915207462},
    {4.042929935166739, -2.808917465908714, 0.5000178451051316},
    {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
    {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
    {2.3465413258596377, -1.7097828382687081, 0.42323551169305323},
};

void adamw_step_fused(torch::Tensor& p, const torch::Tensor& grad, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq,
                      const torch::Tensor& step_t, const torch::Tensor& lr_t, const torch::Tensor& beta1_t,
                      const torch::Tensor& beta2_t, const torch::Tensor& eps_t, const torch::Tensor& wd_t) {
  // decoupled weight decay, before the update
  p.mul_(value_of(one_minus(lr_t * wd_t)));
  exp_avg.lerp_(grad, value_of(one_minus(beta1_t)));
  exp_avg_sq.lerp_(grad.square(), value_of(one_minus(beta2_t)));
  torch::Tensor bias1 = one_minus(beta1_t.pow(step_t));
  torch::Tensor bias2 = one_minus(beta2_t.pow(step_t));
  torch::Tensor denom = (exp_avg_sq / value_of(bias2)).sqrt_().add_(value_of(eps_t));
  torch::Tensor step_size = lr_t / bias1;
  p.add_(exp_avg / denom, -value_of(step_size));
}

void muon_step_fused(torch::Tensor& stacked_grads, torch::Tensor& stacked_params, torch::Tensor& momentum_buffer,
                     torch::Tensor& second_momentum_buffer, const torch::Tensor& momentum_t, const torch::Tensor& lr_t,
                     const torch::Tensor& wd_t, const torch::Tensor& beta2_t, int64_t ns_steps, int64_t red_dim) {
  // Nesterov momentum
  torch::Tensor momentum = momentum_t.to(stacked_grads.scalar_type());
  momentum_buffer.lerp_(stacked_grads, value_of(one_minus(momentum)));
  torch::Tensor g = stacked_grads.lerp_(momentum_buffer, value_of(momentum));

  // orthogonalize in bf16
  g = polar_express(g.to(torch::kBFloat16), ns_steps);

  // NorMuon variance reduction: per-row (or per-column) second moment, rescaled to keep the Frobenius norm
  torch::Tensor beta2 = beta2_t.to(g.scalar_type());
  torch::Tensor v_mean = g.to(torch::kFloat32).square().mean({red_dim}, /*keepdim=*/true);
  const int64_t red_dim_size = g.size(red_dim);
  torch::Tensor v_norm_sq = v_mean.sum({-2, -1}, /*keepdim=*/true) * red_dim_size;
  torch::Tensor v_norm = v_norm_sq.sqrt();
  second_momentum_buffer.lerp_(v_mean.to(second_momentum_buffer.scalar_type()), value_of(one_minus(beta2)));
  torch::Tensor step_size = second_momentum_buffer.clamp_min(1e-10).rsqrt();
  torch::Tensor scaled_sq_sum = (v_mean * red_dim_size) * step_size.to(torch::kFloat32).square();
  torch::Tensor v_norm_new = scaled_sq_sum.sum({-2, -1}, /*keepdim=*/true).sqrt();
  torch::Tensor final_scale = step_size * (v_norm / v_norm_new.clamp_min(1e-10));
  g = g * final_scale.to(g.scalar_type());

  // cautious weight decay (only where update and parameter agree in sign) + update
  torch::Tensor lr = lr_t.to(g.scalar_type());
  torch::Tensor wd = wd_t.to(g.scalar_type());
  torch::Tensor mask = (g * stacked_params) >= 0;
  stacked_params.sub_(lr * g + lr * wd * stacked_params * mask);
}

}  // namespace

torch::Tensor polar_express(torch::Tensor X, int64_t ns_steps) {
  TORCH_CHECK(ns_steps >= 0 && ns_steps <= 5, "polar_express: ns_steps must be in [0, 5], got ", ns_steps);
  X = X / (frobenius_norm_last2(X) * 1.01 + 1e-6);
  const bool tall = X.size(-2) > X.size(-1);
  for (int64_t i = 0; i < ns_steps; i++) {
    const double a = kPolarExpress[i][0], b = kPolarExpress[i][1], c = kPolarExpress[i][2];
    if (tall) {
      torch::Tensor A = matmul_bf16(X.transpose(-2, -1), X);
      torch::Tensor B = A * b + matmul_bf16(A, A) * c;
      X = X * a + matmul_bf16(X, B);
    } else {
      torch::Tensor A = matmul_bf16(X, X.transpose(-2, -1));
      torch::Tensor B = A * b + matmul_bf16(A, A) * c;
      X = X * a + matmul_bf16(B, X);
    }
  }
  return X;
}

MuonAdamW::MuonAdamW(std::vector<ParamGroup> groups, c10::intrusive_ptr<c10d::ProcessGroup> pg)
    : groups_(std::move(groups)), pg_(std::move(pg)) {
  size_t n = 0;
  for (const auto& g : groups_) {
    TORCH_CHECK(g.names.empty() || g.names.size() == g.params.size(), "ParamGroup: names and params differ in length");
    n += g.params.size();
  }
  state_.resize(n);
}

void MuonAdamW::step() {
  torch::NoGradGuard no_grad;
  if (distributed()) return step_distributed();
  size_t index = 0;
  for (auto& group : groups_) {
    if (group.kind == GroupKind::adamw)
      step_adamw(group, index);
    else
      step_muon(group, index);
    index += group.params.size();
  }
}

void MuonAdamW::step_adamw(ParamGroup& group, size_t first_index) {
  for (size_t i = 0; i < group.params.size(); i++) {
    const torch::Tensor& grad = group.params[i].grad();
    if (grad.defined()) adamw_update(group, state_[first_index + i], group.params[i], grad);
  }
}

void MuonAdamW::adamw_update(const ParamGroup& group, State& st, torch::Tensor p, const torch::Tensor& grad) {
  if (!st.exp_avg.defined()) {
    st.step = 0;
    st.exp_avg = torch::zeros_like(p);
    st.exp_avg_sq = torch::zeros_like(p);
  }
  st.step += 1;
  adamw_step_fused(p, grad, st.exp_avg, st.exp_avg_sq, scalar_f32(static_cast<double>(st.step)), scalar_f32(group.lr),
                   scalar_f32(group.betas.first), scalar_f32(group.betas.second), scalar_f32(group.eps),
                   scalar_f32(group.weight_decay));
}

void MuonAdamW::step_muon(ParamGroup& group, size_t first_index) {
  if (group.params.empty()) return;
  const torch::Tensor& p0 = group.params[0];
  const int64_t K = static_cast<int64_t>(group.params.size());
  std::vector<torch::Tensor> grads;
  grads.reserve(group.params.size());
  for (size_t i = 0; i < group.params.size(); i++) {
    const torch::Tensor& g = group.params[i].grad();
    TORCH_CHECK(g.defined(), "Muon parameter ",
                i < group.names.size() ? group.names[i] : std::to_string(first_index + i), " has no gradient");
    TORCH_CHECK(group.params[i].sizes() == p0.sizes(), "Muon group mixes shapes ", p0.sizes(), " and ",
                group.params[i].sizes());
    grads.push_back(g);
  }
  torch::Tensor stacked_params = torch::stack(group.params);
  // the group's state lives on its first parameter
  muon_update(group, state_[first_index], torch::stack(grads), stacked_params, K);
  for (int64_t i = 0; i < K; i++) group.params[i].copy_(stacked_params[i]);
}

void MuonAdamW::muon_update(const ParamGroup& group, State& st, torch::Tensor grads, torch::Tensor params,
                            int64_t state_rows) {
  const torch::Tensor& p0 = group.params.at(0);
  TORCH_CHECK(p0.dim() >= 2, "Muon group holds a ", p0.dim(), "-d parameter; Muon needs matrices");
  const int64_t rows = p0.size(-2), cols = p0.size(-1);
  if (!st.momentum_buffer.defined()) {
    std::vector<int64_t> shape{state_rows};
    for (int64_t s : p0.sizes()) shape.push_back(s);
    st.momentum_buffer = torch::zeros(shape, p0.options());
  }
  if (!st.second_momentum_buffer.defined()) {
    std::vector<int64_t> shape{state_rows};
    for (int64_t s : p0.sizes()) shape.push_back(s);
    if (rows >= cols)
      shape.back() = 1;
    else
      shape[shape.size() - 2] = 1;
    st.second_momentum_buffer = torch::zeros(shape, p0.options());
  }
  const int64_t n = grads.size(0);
  if (n == 0) return;
  const int64_t red_dim = rows >= cols ? -1 : -2;
  // the first n matrices of the buffers, updated in place through the views
  torch::Tensor momentum_buffer = st.momentum_buffer.narrow(0, 0, n);
  torch::Tensor second_momentum_buffer = st.second_momentum_buffer.narrow(0, 0, n);
  const double lr = group.lr * std::pow(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)), 0.5);
  muon_step_fused(grads, params, momentum_buffer, second_momentum_buffer, scalar_f32(group.momentum), scalar_f32(lr),
                  scalar_f32(group.weight_decay), scalar_f32(group.beta2), group.ns_steps, red_dim);
}

void MuonAdamW::zero_grad() {
  for (auto& group : groups_)
    for (auto& p : group.params)
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

// ---------------------------------------------------------------------------------------------------------------------
// state_dict / load_state_dict

c10::IValue MuonAdamW::state_dict() const {
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  c10::impl::GenericList param_groups(c10::AnyType::get());
  int64_t index = 0;
  for (const auto& group : groups_) {
    c10::impl::GenericDict g(c10::StringType::get(), c10::AnyType::get());
    g.insert("kind", std::string(group_kind_name(group.kind)));
    g.insert("lr", group.lr);
    if (group.kind == GroupKind::adamw) {
      g.insert("betas", c10::ivalue::Tuple::create({c10::IValue(group.betas.first), c10::IValue(group.betas.second)}));
      g.insert("eps", group.eps);
      g.insert("weight_decay", group.weight_decay);
    } else {
      g.insert("momentum", group.momentum);
      g.insert("ns_steps", group.ns_steps);
      g.insert("beta2", group.beta2);
      g.insert("weight_decay", group.weight_decay);
    }
    g.insert("initial_lr", group.initial_lr);
    c10::List<int64_t> ids;
    for (size_t i = 0; i < group.params.size(); i++, index++) {
      ids.push_back(index);
      const State& st = state_[index];
      if (st.empty()) continue;
      c10::impl::GenericDict s(c10::StringType::get(), c10::AnyType::get());
      if (group.kind == GroupKind::adamw) {
        s.insert("step", st.step);
        s.insert("exp_avg", st.exp_avg);
        s.insert("exp_avg_sq", st.exp_avg_sq);
      } else {
        if (st.momentum_buffer.defined()) s.insert("momentum_buffer", st.momentum_buffer);
        if (st.second_momentum_buffer.defined()) s.insert("second_momentum_buffer", st.second_momentum_buffer);
      }
      state.insert(static_cast<int64_t>(index), s);
    }
    g.insert("params", ids);
    param_groups.push_back(g);
  }
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("state", state);
  out.insert("param_groups", param_groups);
  return out;
}

namespace {

double number_of(const c10::IValue& v, const std::string& what) {
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  if (v.isBool()) return v.toBool() ? 1.0 : 0.0;
  if (v.isTensor() && v.toTensor().numel() == 1) return v.toTensor().item<double>();
  fail("optimizer state: {} should be a number but is a {}", what, v.tagKind());
}

c10::IValue get_key(const c10::impl::GenericDict& d, const std::string& key, const std::string& where) {
  auto it = d.find(c10::IValue(key));
  if (it == d.end()) fail("optimizer state: {} has no \"{}\"", where, key);
  return it->value();
}

}  // namespace

void MuonAdamW::load_state_dict(const c10::IValue& sd) {
  if (!sd.isGenericDict())
    fail("optimizer state: expected a dict with \"state\" and \"param_groups\", got a {}", sd.tagKind());
  const auto top = sd.toGenericDict();
  const c10::IValue groups_iv = get_key(top, "param_groups", "the state dict");
  const c10::IValue state_iv = get_key(top, "state", "the state dict");
  if (!groups_iv.isList()) fail("optimizer state: \"param_groups\" should be a list");
  if (!state_iv.isGenericDict()) fail("optimizer state: \"state\" should be a dict");
  const auto saved_groups = groups_iv.toList();
  if (saved_groups.size() != groups_.size())
    fail("optimizer state has {} param groups but this optimizer has {}; it was saved for a different model",
         saved_groups.size(), groups_.size());

  // Parse everything first so a bad file leaves the optimizer untouched.
  std::vector<ParamGroup> groups = groups_;
  std::map<int64_t, size_t> saved_to_flat;  // saved parameter id -> our flat index
  size_t flat = 0;
  for (size_t gi = 0; gi < groups.size(); gi++) {
    const std::string where = fmt::format("param group {}", gi);
    const c10::IValue giv = saved_groups.get(gi);
    if (!giv.isGenericDict()) fail("optimizer state: {} is not a dict", where);
    const auto g = giv.toGenericDict();
    ParamGroup& ours = groups[gi];
    const c10::IValue kind = get_key(g, "kind", where);
    if (!kind.isString() || kind.toStringRef() != group_kind_name(ours.kind))
      fail("optimizer state: {} is kind {} but this optimizer's is {}", where,
           kind.isString() ? kind.toStringRef() : std::string("?"), group_kind_name(ours.kind));
    const c10::IValue ids = get_key(g, "params", where);
    if (!ids.isList()) fail("optimizer state: {} \"params\" should be a list", where);
    const auto id_list = ids.toList();
    if (id_list.size() != ours.params.size())
      fail("optimizer state: {} has {} parameters but this optimizer's has {}; it was saved for a different model",
           where, id_list.size(), ours.params.size());
    for (size_t i = 0; i < id_list.size(); i++) {
      const c10::IValue id = id_list.get(i);
      if (!id.isInt()) fail("optimizer state: {} has a parameter id that is not an int", where);
      saved_to_flat[id.toInt()] = flat + i;
    }
    flat += ours.params.size();
    ours.lr = number_of(get_key(g, "lr", where), where + " lr");
    ours.weight_decay = number_of(get_key(g, "weight_decay", where), where + " weight_decay");
    auto init = g.find(c10::IValue(std::string("initial_lr")));
    if (init != g.end()) ours.initial_lr = number_of(init->value(), where + " initial_lr");
    if (ours.kind == GroupKind::adamw) {
      const c10::IValue betas = get_key(g, "betas", where);
      std::vector<c10::IValue> b;
      if (betas.isTuple())
        b = betas.toTupleRef().elements().vec();
      else if (betas.isList())
        b = betas.toList().vec();
      if (b.size() != 2) fail("optimizer state: {} betas should be a pair", where);
      ours.betas = {number_of(b[0], where + " betas"), number_of(b[1], where + " betas")};
      ours.eps = number_of(get_key(g, "eps", where), where + " eps");
    } else {
      ours.momentum = number_of(get_key(g, "momentum", where), where + " momentum");
      ours.ns_steps = static_cast<int64_t>(number_of(get_key(g, "ns_steps", where), where + " ns_steps"));
      const c10::IValue beta2 = get_key(g, "beta2", where);
      ours.beta2 = beta2.isNone() ? 0.0 : number_of(beta2, where + " beta2");
    }
  }

  // Which group each flat index belongs to, to cast state like PyTorch does (to the parameter's device, and
  // floating-point tensors to its dtype).
  std::vector<const torch::Tensor*> param_of(flat);
  {
    size_t k = 0;
    for (auto& g : groups)
      for (auto& p : g.params) param_of[k++] = &p;
  }
  auto cast = [&](const c10::IValue& v, size_t index, const std::string& what) {
    if (!v.isTensor()) fail("optimizer state: parameter {} {} should be a tensor", index, what);
    torch::Tensor t = v.toTensor();
    const torch::Tensor& p = *param_of[index];
    if (t.is_floating_point()) return t.to(p.device(), p.scalar_type());
    return t.to(p.device());
  };
  std::vector<State> state(flat);
  for (const auto& entry : state_iv.toGenericDict()) {
    if (!entry.key().isInt()) fail("optimizer state: a \"state\" key is not a parameter id");
    auto it = saved_to_flat.find(entry.key().toInt());
    if (it == saved_to_flat.end())
      fail("optimizer state: \"state\" has parameter id {} that no param group lists", entry.key().toInt());
    if (!entry.value().isGenericDict()) fail("optimizer state: state of parameter {} is not a dict", it->first);
    const auto s = entry.value().toGenericDict();
    State& st = state[it->second];
    for (const auto& kv : s) {
      if (!kv.key().isString()) fail("optimizer state: parameter {} has a non-string state key", it->first);
      const std::string& k = kv.key().toStringRef();
      if (k == "step")
        st.step = static_cast<int64_t>(number_of(kv.value(), "step"));
      else if (k == "exp_avg")
        st.exp_avg = cast(kv.value(), it->second, k);
      else if (k == "exp_avg_sq")
        st.exp_avg_sq = cast(kv.value(), it->second, k);
      else if (k == "momentum_buffer")
        st.momentum_buffer = cast(kv.value(), it->second, k);
      else if (k == "second_momentum_buffer")
        st.second_momentum_buffer = cast(kv.value(), it->second, k);
      else
        fail("optimizer state: parameter {} has unknown state \"{}\"", it->first, k);
    }
  }
  check_state_shapes(groups, state);  // shapes must fit the parameters (or this rank's shards of them)
  groups_ = std::move(groups);
  state_ = std::move(state);
}

// ---------------------------------------------------------------------------------------------------------------------
// setup_optimizer

MuonAdamW setup_optimizer(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, int64_t model_dim,
                          double unembedding_lr, double embedding_lr, double matrix_lr, double weight_decay,
                          double scalar_lr, c10::intrusive_ptr<c10d::ProcessGroup> pg) {
  using Named = std::pair<std::string, torch::Tensor>;
  std::vector<Named> lm_head, wte, value_embeds, resid, x0, matrix;
  Named smear_gate, smear_lambda, backout_lambda;
  auto starts_with = [](const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; };
  for (const auto& np : named_params) {
    const std::string& name = np.first;
    if (name == "lm_head.weight")
      lm_head.push_back(np);
    else if (name == "transformer.wte.weight")
      wte.push_back(np);
    else if (starts_with(name, "value_embeds."))
      value_embeds.push_back(np);
    else if (name == "resid_lambdas")
      resid.push_back(np);
    else if (name == "x0_lambdas")
      x0.push_back(np);
    else if (name == "smear_gate.weight")
      smear_gate = np;
    else if (name == "smear_lambda")
      smear_lambda = np;
    else if (name == "backout_lambda")
      backout_lambda = np;
    else if (starts_with(name, "transformer.h."))
      matrix.push_back(np);
    else
      fail("setup_optimizer: parameter {} belongs to no optimizer group (is this a nanochat GPT?)", name);
  }
  // the smear group lists the gate first, then the two lambdas (the reference's order, which fixes the ids in
  // its saved optimizer state)
  std::vector<Named> smear;
  for (const Named* n : {&smear_gate, &smear_lambda, &backout_lambda})
    if (n->second.defined()) smear.push_back(*n);

  // AdamW lrs ∝ 1/√d_model, tuned at 768
  const double dmodel_lr_scale = std::pow(static_cast<double>(model_dim) / 768.0, -0.5);
  print0f("Scaling the LR for the AdamW parameters ∝1/√({}/768) = {:.6f}", model_dim, dmodel_lr_scale);

  std::vector<ParamGroup> groups;
  auto adamw = [&](const std::vector<Named>& ps, double lr, double b1, double b2, double wd) {
    ParamGroup g;
    g.kind = GroupKind::adamw;
    for (const auto& [n, p] : ps) g.names.push_back(n), g.params.push_back(p);
    g.lr = lr;
    g.betas = {b1, b2};
    g.eps = 1e-10;
    g.weight_decay = wd;
    groups.push_back(std::move(g));
  };
  adamw(lm_head, unembedding_lr * dmodel_lr_scale, 0.8, 0.96, 0.01);
  adamw(wte, embedding_lr * dmodel_lr_scale, 0.8, 0.995, 0.001);
  adamw(value_embeds, embedding_lr * dmodel_lr_scale * 0.5, 0.8, 0.995, 0.01);
  adamw(resid, scalar_lr * 0.01, 0.8, 0.95, 0.05);
  adamw(x0, scalar_lr, 0.96, 0.95, 0.0);  // higher beta1 for x0
  adamw(smear, 0.2, 0.8, 0.95, 0.0);

  // Muon: one group per distinct matrix shape, shapes ascending (tuple order), parameters in model order
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& [n, p] : matrix) shapes.push_back(p.sizes().vec());
  std::sort(shapes.begin(), shapes.end());
  shapes.erase(std::unique(shapes.begin(), shapes.end()), shapes.end());
  for (const auto& shape : shapes) {
    ParamGroup g;
    g.kind = GroupKind::muon;
    for (const auto& [n, p] : matrix)
      if (p.sizes().vec() == shape) g.names.push_back(n), g.params.push_back(p);
    g.lr = matrix_lr;
    g.momentum = 0.95;
    g.ns_steps = 5;
    g.beta2 = 0.9;
    g.weight_decay = weight_decay;
    groups.push_back(std::move(g));
  }
  for (auto& g : groups) g.initial_lr = g.lr;
  return MuonAdamW(std::move(groups), std::move(pg));
}

}  // namespace nanochat
