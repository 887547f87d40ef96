// optim: MuonAdamW, nanochat's combined optimizer (nanochat/optim.py), and setup_optimizer, the factory that splits a
// GPT's parameters into its AdamW and Muon groups (nanochat/gpt.py GPT.setup_optimizer).
//
//   auto opt = setup_optimizer(model->named_parameters_in_order(), config.n_embd, 0.004, 0.2, 0.02, wd, 0.5);
//   loss.backward(); opt.step(); opt.zero_grad();
//   for (auto& g : opt.param_groups()) g.lr = g.initial_lr * lrm;       // schedules: nanochat/schedules.h
//   c10::IValue sd = opt.state_dict();  ...  opt.load_state_dict(sd);   // PyTorch's optimizer layout
//
// - AdamW groups (embeddings, lm_head, scalars) update each parameter on its own: decoupled weight decay, then
//   Adam with bias correction. State (step, exp_avg, exp_avg_sq) is created on the first step, in the
//   parameter's dtype.
// - Muon groups hold same-shaped 2-D matrices that are stacked into [K, rows, cols] and updated together:
//   Nesterov momentum, Polar Express orthogonalization in bf16, NorMuon variance reduction with a factored
//   second moment, cautious weight decay, lr × sqrt(max(1, rows/cols)).
// The arithmetic follows the reference op by op and dtype by dtype (its hyper-parameters are 0-d fp32 tensors,
// and the Muon step casts beta2, lr and wd to the update's dtype, bf16), so a step on CPU in fp32 is
// bit-identical to Python nanochat on the same libtorch version.
//
// Distributed (ZeRO-2, nanochat/optim.py DistMuonAdamW; the arithmetic lives in optim_dist.cpp): give the optimizer a
// process group of world size > 1 and step() averages the gradients across ranks itself, so call it on every rank with
// each rank's own, NOT pre-averaged, gradients (no DDP wrapper, no all_reduce of your own). Every parameter needs a
// gradient on every rank. AdamW parameters under 1024 elements are all-reduced and updated whole on every rank; larger
// ones are reduce-scattered along dim 0 (whose size the world size must divide), each rank updates its row slice
// and the slices are all-gathered. A Muon group of K matrices is split into chunks of ceil(K/world size), each
// rank updates its own chunk and the results are all-gathered. Afterwards every rank holds the same parameters,
// but its optimizer state covers only its own slices and chunks: state_dict() is that rank's shard (Python's
// per-rank optim file), and load_state_dict() accepts only a shard saved with the same world size (each rank
// loads its own). A null group, or one of world size 1, is the single-process optimizer, unchanged.
//
// Not covered here: gradient clipping or accumulation (the training loops' job).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/torch.h>

namespace nanochat {

enum class GroupKind { adamw, muon };
const char* group_kind_name(GroupKind kind);

// One parameter group. AdamW groups use betas/eps, Muon groups momentum/ns_steps/beta2; both use lr,
// initial_lr (the schedules scale it into lr) and weight_decay. Training loops change lr, momentum and
// weight_decay between steps; step() reads them every time.
struct ParamGroup {
  GroupKind kind = GroupKind::adamw;
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;  // the parameters' state-dict keys, same order as params
  double lr = 0.0;
  double initial_lr = 0.0;
  double weight_decay = 0.0;
  // adamw
  std::pair<double, double> betas{0.9, 0.999};
  double eps = 1e-10;
  // muon
  double momentum = 0.95;
  int64_t ns_steps = 5;
  double beta2 = 0.9;
};

class MuonAdamW {
 public:
  MuonAdamW() = default;
  // pg: the process group to shard over (see the header comment); null = single process.
  explicit MuonAdamW(std::vector<ParamGroup> groups, c10::intrusive_ptr<c10d::ProcessGroup> pg = {});

  // One update of every group from the parameters' .grad() (under no_grad). AdamW skips parameters without a
  // gradient; a Muon group needs a gradient for every one of its parameters. Distributed, it is a collective:
  // every rank must call it, and every parameter needs a gradient.
  void step();
  // Drops every gradient (set_to_none, as nanochat's training loops do).
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // PyTorch's optimizer state_dict layout (torch.optim.Optimizer.state_dict): a dict {"state": {index: {...}},
  // "param_groups": [...]} with parameters numbered in group order. AdamW state: step (int), exp_avg, exp_avg_sq; Muon
  // state, on the group's first parameter only: momentum_buffer [K, rows, cols], second_momentum_buffer (distributed:
  // this rank's shard, row slices and [chunk, rows, cols], as Python's DistMuonAdamW saves it). Tensors are shared, not
  // copied. torch::pickle_save of it is readable by Python's torch.load.
  c10::IValue state_dict() const;
  // Accepts what state_dict() returns or what Python nanochat saved. The groups must match in number and size;
  // their hyper-parameters are replaced by the saved ones, and state tensors are moved to each parameter's
  // device (floating-point ones also to its dtype). Bad input fails with a one-line nanochat::Error.
  void load_state_dict(const c10::IValue& state_dict);

  // Per-parameter state, indexed like state_dict()'s "state" (flat over groups, in group order).
  struct State {
    int64_t step = 0;                      // adamw
    torch::Tensor exp_avg;                 // adamw
    torch::Tensor exp_avg_sq;              // adamw
    torch::Tensor momentum_buffer;         // muon, first parameter of the group only
    torch::Tensor second_momentum_buffer;  // muon, first parameter of the group only
    bool empty() const { return step == 0 && !exp_avg.defined() && !momentum_buffer.defined(); }
  };
  const std::vector<State>& state() const { return state_; }

  int rank() const { return distributed() ? pg_->getRank() : 0; }
  int world_size() const { return distributed() ? pg_->getSize() : 1; }

 private:
  bool distributed() const { return pg_ && pg_->getSize() > 1; }
  void step_adamw(ParamGroup& group, size_t first_index);
  void step_muon(ParamGroup& group, size_t first_index);
  // The per-group arithmetic, shared by both forms. adamw_update: one parameter (or this rank's row slice of it)
  // from its (averaged) gradient; creates the state like p. muon_update: the first grads.size(0) matrices of the
  // state's buffers, which have state_rows matrices (K, or the chunk size when sharded), are updated in place
  // in params ([n, rows, cols]); creates the buffers even when n is 0.
  void adamw_update(const ParamGroup& group, State& st, torch::Tensor p, const torch::Tensor& grad);
  void muon_update(const ParamGroup& group, State& st, torch::Tensor grads, torch::Tensor params, int64_t state_rows);
  // optim_dist.cpp: the three-phase ZeRO-2 step, and the state shapes a rank of this world size must hold (fails
  // naming the world size a state was saved with).
  void step_distributed();
  void check_state_shapes(const std::vector<ParamGroup>& groups, const std::vector<State>& state) const;

  std::vector<ParamGroup> groups_;
  std::vector<State> state_;
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
};

// nanochat's GPT.setup_optimizer over the model's named parameters in model order (names as in the state
// dict). Groups, in this order: AdamW lm_head; wte; value_embeds; resid_lambdas; x0_lambdas; smear_gate,
// smear_lambda, backout_lambda (fixed lr 0.2); then one Muon group per distinct shape of the transformer.h.*
// matrices, shapes ascending, parameters in model order. AdamW lrs of the embeddings and lm_head are scaled by
// (model_dim/768)^-0.5, which is printed. Every group's initial_lr = lr. A parameter that fits no group is an
// error. pg: shard the optimizer over this process group (the distributed step above); null = single process.
MuonAdamW setup_optimizer(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, int64_t model_dim,
                          double unembedding_lr = 0.004, double embedding_lr = 0.2, double matrix_lr = 0.02,
                          double weight_decay = 0.0, double scalar_lr = 0.5,
                          c10::intrusive_ptr<c10d::ProcessGroup> pg = {});

// The Polar Express orthogonalization of a stacked [K, rows, cols] update (in the input's dtype; the optimizer
// passes bf16), exposed for tests and benchmarks.
torch::Tensor polar_express(torch::Tensor X, int64_t ns_steps);

}  // namespace nanochat
