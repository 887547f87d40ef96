// optim_dist: the distributed ZeRO-2 step of MuonAdamW (nanochat/optim.py DistMuonAdamW) and the shapes of a
// sharded optimizer state. Used through MuonAdamW / setup_optimizer with a process group (see optim.h); the
// per-group arithmetic is optim.cpp's, applied to this rank's row slice or chunk.
//
// One step, over every rank at once:
//   1. launch every gradient reduction (async): AdamW parameters under 1024 elements are all-reduced (AVG) in
//      place; larger ones are reduce-scattered (AVG) along dim 0; each Muon group's gradients are stacked into
//      [chunk·ws, rows, cols] (zero-padded, chunk = ceil(K/ws)) and reduce-scattered into this rank's chunk.
//   2. group by group: wait for its reduction, update what this rank owns, launch the all-gather of the result.
//   3. wait for the gathers and copy each Muon group's gathered stack back into its parameters.
// NCCL does this with its own reduce-scatter, AVG and flat all-gather. Gloo (libtorch 1.13) has neither AVG nor
// reduce-scatter nor a flat all-gather, so there an average is an all-reduce SUM divided by the world size (this
// rank then keeps its rows of it) and a flat all-gather is a list all-gather into views of the output: the same
// numbers, more traffic, which a CPU run can afford.
//
// Not covered: overlapping the reductions with the backward pass (Python does not either), and parameters
// without a gradient (every rank must reduce every parameter, so they are an error here).
#include <algorithm>

#include "nanochat/common.h"
#include "nanochat/optim.h"

namespace nanochat {

namespace {

// AdamW parameters with fewer elements than this are replicated (all-reduced and updated whole on every rank).
constexpr int64_t kShardMinNumel = 1024;

bool sharded_adamw(const torch::Tensor& p, int ws) { return ws > 1 && p.numel() >= kShardMinNumel; }

int64_t muon_chunk(int64_t K, int ws) { return (K + ws - 1) / ws; }

std::vector<int64_t> with_rows(c10::IntArrayRef sizes, int64_t rows) {
  std::vector<int64_t> shape = sizes.vec();
  shape[0] = rows;
  return shape;
}

std::vector<int64_t> stacked_shape(int64_t n, c10::IntArrayRef sizes) {
  std::vector<int64_t> shape{n};
  for (int64_t s : sizes) shape.push_back(s);
  return shape;
}

// The collectives step() needs, each as NCCL has it or as Gloo can do it (see the header comment).
struct Comm {
  c10d::ProcessGroup& pg;
  int rank;
  int ws;
  bool native;  // the backend has AVG, reduce-scatter and the flat all-gather (NCCL)
};

// Gloo (1.13) cannot add bf16: such tensors are reduced in fp32 there (one rounding, after the division).
bool widen(const Comm& comm, const torch::Tensor& t) { return !comm.native && t.scalar_type() == torch::kBFloat16; }

// An averaging reduction in flight. After wait(), result is the average: the whole tensor (written into it, as
// Python's in-place all_reduce does) or this rank's rows of it.
struct Reduction {
  c10::intrusive_ptr<c10d::Work> work;
  torch::Tensor target;  // the reduced tensor (all-reduce: also where the average goes)
  torch::Tensor buffer;  // what the collective writes
  torch::Tensor result;
  int64_t rows = -1;    // scatter: rows per rank; -1: the whole tensor (all-reduce)
  bool summed = false;  // buffer holds the sum, still to be divided

  void wait(const Comm& comm) {
    work->wait();
    if (!summed) {
      result = buffer;
      return;
    }
    torch::Tensor avg = (rows >= 0 ? buffer.narrow(0, comm.rank * rows, rows) : buffer).div_(comm.ws);
    if (rows >= 0)
      result = avg.scalar_type() == target.scalar_type() ? avg : avg.to(target.scalar_type());
    else
      result = avg.is_same(target) ? target : target.copy_(avg);
  }
};

// All-reduce AVG of t, in place.
Reduction all_reduce_avg(const Comm& comm, torch::Tensor t) {
  Reduction r;
  r.target = t;
  r.buffer = widen(comm, t) ? t.to(torch::kFloat32) : t;
  std::vector<torch::Tensor> tensors{r.buffer};
  c10d::AllreduceOptions opts;
  opts.reduceOp = comm.native ? c10d::ReduceOp::AVG : c10d::ReduceOp::SUM;
  r.work = comm.pg.allreduce(tensors, opts);
  r.summed = !comm.native;
  return r;
}

// Reduce-scatter AVG of t along dim 0: this rank gets rows [rank·rows, (rank+1)·rows). Without a native
// reduce-scatter the sum is all-reduced into t itself when overwrite is allowed, else into a copy.
Reduction reduce_scatter_avg(const Comm& comm, torch::Tensor t, bool overwrite) {
  Reduction r;
  r.target = t;
  r.rows = t.size(0) / comm.ws;
  if (comm.native) {
    r.buffer = torch::empty(with_rows(t.sizes(), r.rows), t.options());
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = c10d::ReduceOp::AVG;
    r.work = comm.pg._reduce_scatter_base(r.buffer, t, opts);
  } else {
    r.buffer = widen(comm, t) ? t.to(torch::kFloat32) : overwrite ? t : t.clone(at::MemoryFormat::Contiguous);
    std::vector<torch::Tensor> tensors{r.buffer};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    r.work = comm.pg.allreduce(tensors, opts);
    r.summed = true;
  }
  return r;
}

// All-gather of every rank's `in` into `out` along dim 0 (out has ws times in's rows; in may be a view of out).
// Gloo moves bf16 as fp16 bit patterns (a gather only copies).
c10::intrusive_ptr<c10d::Work> all_gather(const Comm& comm, torch::Tensor out, torch::Tensor in) {
  if (comm.native) return comm.pg._allgather_base(out, in);
  if (widen(comm, in)) {
    out = out.view(torch::kHalf);
    in = in.view(torch::kHalf);
  }
  std::vector<std::vector<torch::Tensor>> outputs{out.split(in.size(0))};
  std::vector<torch::Tensor> inputs{in.contiguous()};
  return comm.pg.allgather(outputs, inputs);
}

}  // namespace

void MuonAdamW::step_distributed() {
  const Comm comm{*pg_, pg_->getRank(), pg_->getSize(), pg_->getBackendName() == "nccl"};
  const int ws = comm.ws;

  // Check everything before the first collective, so a bad setup fails on every rank alike instead of hanging.
  size_t index = 0;
  for (auto& group : groups_) {
    for (size_t i = 0; i < group.params.size(); i++) {
      const torch::Tensor& p = group.params[i];
      const std::string name = i < group.names.size() ? group.names[i] : fmt::format("#{}", index + i);
      if (!p.grad().defined())
        fail(
            "parameter {} has no gradient; the distributed optimizer averages every parameter's gradient "
            "across ranks, so every rank must backpropagate into all of them",
            name);
      if (!p.grad().is_contiguous()) p.mutable_grad() = p.grad().contiguous();  // collectives want dense tensors
      if (group.kind == GroupKind::adamw && sharded_adamw(p, ws) && (p.dim() == 0 || p.size(0) % ws != 0))
        fail(
            "parameter {} has shape {}: the distributed optimizer splits its first dimension across {} "
            "processes, which needs it divisible by {}; use a number of processes that divides it",
            name, c10::str(p.sizes()), ws, ws);
      if (group.kind == GroupKind::muon && (p.dim() < 2 || p.sizes() != group.params[0].sizes()))
        fail("Muon group of {} holds parameter {} of shape {}; a Muon group needs matrices of one shape",
             c10::str(group.params[0].sizes()), name, c10::str(p.sizes()));
    }
    index += group.params.size();
  }

  // Phase 1: launch every reduction.
  struct GroupWork {
    std::vector<Reduction> reductions;  // adamw: one per parameter; muon: one for the stack
    torch::Tensor stacked;              // muon: [chunk·ws, ...] gradients, later the gathered parameters
    int64_t chunk = 0;
  };
  std::vector<GroupWork> work(groups_.size());
  for (size_t gi = 0; gi < groups_.size(); gi++) {
    ParamGroup& group = groups_[gi];
    if (group.kind == GroupKind::adamw) {
      for (const torch::Tensor& p : group.params) {
        if (sharded_adamw(p, ws))
          work[gi].reductions.push_back(reduce_scatter_avg(comm, p.grad(), false));
        else
          work[gi].reductions.push_back(all_reduce_avg(comm, p.grad()));
      }
    } else if (!group.params.empty()) {
      const int64_t K = static_cast<int64_t>(group.params.size());
      const int64_t chunk = muon_chunk(K, ws);
      const torch::Tensor& p0 = group.params[0];
      torch::Tensor stacked = torch::empty(stacked_shape(chunk * ws, p0.sizes()), p0.options());
      std::vector<torch::Tensor> grads;
      for (const torch::Tensor& p : group.params) grads.push_back(p.grad());
      stacked.narrow(0, 0, K).copy_(torch::stack(grads));
      if (K < chunk * ws) stacked.narrow(0, K, chunk * ws - K).zero_();
      work[gi].stacked = stacked;
      work[gi].chunk = chunk;
      work[gi].reductions.push_back(reduce_scatter_avg(comm, stacked, true));
    }
  }

  // Phase 2: group by group, wait, update what this rank owns, launch the gathers.
  std::vector<c10::intrusive_ptr<c10d::Work>> gathers;
  index = 0;
  for (size_t gi = 0; gi < groups_.size(); gi++) {
    ParamGroup& group = groups_[gi];
    GroupWork& gw = work[gi];
    if (group.kind == GroupKind::adamw) {
      for (size_t i = 0; i < group.params.size(); i++) {
        Reduction& red = gw.reductions[i];
        red.wait(comm);
        // detached: the gather's copies may run on the backend's threads, outside this thread's no_grad
        torch::Tensor p = group.params[i].detach();
        if (!sharded_adamw(p, ws)) {
          adamw_update(group, state_[index + i], p, red.result);
          continue;
        }
        const int64_t rows = p.size(0) / ws;
        torch::Tensor slice = p.narrow(0, comm.rank * rows, rows);
        adamw_update(group, state_[index + i], slice, red.result);
        gathers.push_back(all_gather(comm, p, slice));
      }
    } else if (!group.params.empty()) {
      Reduction& red = gw.reductions[0];
      red.wait(comm);
      const int64_t K = static_cast<int64_t>(group.params.size());
      const int64_t start = comm.rank * gw.chunk;
      const int64_t owned = std::min(gw.chunk, std::max<int64_t>(0, K - start));
      const torch::Tensor& p0 = group.params[0];
      torch::Tensor updated = torch::empty(stacked_shape(gw.chunk, p0.sizes()), p0.options());
      torch::Tensor params = updated.narrow(0, 0, 0);
      if (owned > 0)
        params = torch::stack(
            std::vector<torch::Tensor>(group.params.begin() + start, group.params.begin() + start + owned));
      // the state is created (sized [chunk, ...]) even on a rank that owns nothing, as Python does
      muon_update(group, state_[index], red.result.narrow(0, 0, owned), params, gw.chunk);
      if (owned > 0) updated.narrow(0, 0, owned).copy_(params);
      if (owned < gw.chunk) updated.narrow(0, owned, gw.chunk - owned).zero_();
      gathers.push_back(all_gather(comm, gw.stacked, updated));
    }
    index += group.params.size();
  }

  // Phase 3: wait for the gathers; the Muon stacks go back into their parameters (padding dropped).
  for (auto& g : gathers) g->wait();
  for (size_t gi = 0; gi < groups_.size(); gi++) {
    if (groups_[gi].kind != GroupKind::muon) continue;
    for (size_t i = 0; i < groups_[gi].params.size(); i++) groups_[gi].params[i].copy_(work[gi].stacked[i]);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// State shapes: single process, the parameters' own; sharded, the row slices and [chunk, ...] Muon buffers.

void MuonAdamW::check_state_shapes(const std::vector<ParamGroup>& groups, const std::vector<State>& state) const {
  const int ws = world_size();
  auto different_world = [&](const std::string& saved, const std::string& why) {
    fail(
        "optimizer state was saved with {} but this run has {} process{} ({}); resume with the same number of "
        "processes",
        saved, ws, ws == 1 ? "" : "es", why);
  };
  size_t index = 0;
  for (size_t gi = 0; gi < groups.size(); gi++) {
    const ParamGroup& group = groups[gi];
    for (size_t i = 0; i < group.params.size(); i++) {
      const State& st = state[index + i];
      const torch::Tensor& p = group.params[i];
      const std::string name = i < group.names.size() ? group.names[i] : fmt::format("#{}", index + i);
      if (group.kind != GroupKind::adamw || !st.exp_avg.defined()) continue;
      const bool sharded = sharded_adamw(p, ws);
      const std::vector<int64_t> expected = sharded ? with_rows(p.sizes(), p.size(0) / ws) : p.sizes().vec();
      for (const torch::Tensor* t : {&st.exp_avg, &st.exp_avg_sq}) {
        if (!t->defined() || t->sizes() == c10::IntArrayRef(expected)) continue;
        // a row slice of the parameter: it was sharded over p.size(0) / rows processes
        if (p.numel() >= kShardMinNumel && t->dim() == p.dim() && t->size(0) > 0 &&
            t->sizes().slice(1) == p.sizes().slice(1) && p.size(0) % t->size(0) == 0)
          different_world(fmt::format("world size {}", p.size(0) / t->size(0)),
                          fmt::format("the AdamW state of {} holds {} of its {} rows", name, t->size(0), p.size(0)));
        fail(
            "optimizer state: the AdamW state of {} has shape {} but this optimizer expects {}; it was saved for a "
            "different model",
            name, c10::str(t->sizes()), c10::str(c10::IntArrayRef(expected)));
      }
    }
    if (group.kind == GroupKind::muon && !group.params.empty()) {
      const State& st = state[index];
      const torch::Tensor& p0 = group.params[0];
      const int64_t K = static_cast<int64_t>(group.params.size());
      const int64_t rows = ws > 1 ? muon_chunk(K, ws) : K;
      for (const torch::Tensor* t : {&st.momentum_buffer, &st.second_momentum_buffer}) {
        if (!t->defined()) continue;
        std::vector<int64_t> expected = stacked_shape(rows, p0.sizes());
        if (t == &st.second_momentum_buffer) {
          if (p0.size(-2) >= p0.size(-1))
            expected.back() = 1;
          else
            expected[expected.size() - 2] = 1;
        }
        if (t->sizes() == c10::IntArrayRef(expected)) continue;
        const c10::IntArrayRef want(expected);
        if (t->dim() == static_cast<int64_t>(expected.size()) && t->sizes().slice(1) == want.slice(1)) {
          // the world sizes that give this many matrices per rank
          const int64_t saved = t->size(0);
          int64_t lo = 0, hi = 0;
          for (int64_t w = 1; w <= K; w++)
            if ((w == 1 ? K : muon_chunk(K, static_cast<int>(w))) == saved) {
              if (!lo) lo = w;
              hi = w;
            }
          const std::string why =
              fmt::format("Muon group {} holds {} of its {} matrices per rank, this run {}", gi, saved, K, rows);
          if (lo && lo == hi) different_world(fmt::format("world size {}", lo), why);
          if (lo) different_world(fmt::format("a world size from {} to {}", lo, hi), why);
          different_world("a different world size", why);
        }
        fail(
            "optimizer state: the Muon state of group {} has shape {} but this optimizer expects {}; it was saved "
            "for a different model",
            gi, c10::str(t->sizes()), c10::str(c10::IntArrayRef(expected)));
      }
    }
    index += group.params.size();
  }
}

}  // namespace nanochat
