// Execution of one decoded instruction, and the timing-model scheduler
// (three modules, four token queues, modeled cycles).
#include <algorithm>
#include <deque>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/sim/sim_device.h"
#include "vta_backend/sim/sim_internal.h"

namespace vtaserve::vta::sim {

absl::Status SimDevice::Execute(const Op& op, SimStats& stats) {
  if (const auto* m = std::get_if<MemInsn>(&op.insn)) {
    if (op.nop) {
      ++stats.nop_count;
      return absl::OkStatus();
    }
    const uint64_t n = uint64_t{m->x_size} * m->y_size;
    // The im2col extension's traffic counts as INP traffic.
    const MemoryType counted = m->memory_type == MemoryType::kInpIm2col
                                   ? MemoryType::kInp
                                   : m->memory_type;
    stats.dram_bytes_by_type[static_cast<int>(counted)] += op.bus_bytes;
    if (m->opcode == Opcode::kStore) {
      ++stats.store_count;
      stats.out_store_nbytes += n * config_.OutElemBytes();
      ExecStore(op);
      return absl::OkStatus();
    }
    ++stats.load_count;
    switch (m->memory_type) {
      case MemoryType::kInp:
        stats.inp_load_nbytes += n * config_.InpElemBytes();
        break;
      case MemoryType::kWgt:
        stats.wgt_load_nbytes += n * config_.WgtElemBytes();
        break;
      case MemoryType::kAcc:
      case MemoryType::kAcc8Bit:  // fsim counts ACC bytes for both
        stats.acc_load_nbytes += n * config_.AccElemBytes();
        break;
      case MemoryType::kUop:
        stats.uop_load_nbytes += n * 4;
        break;
      case MemoryType::kOut:
        break;
      case MemoryType::kInpIm2col:
        stats.inp_load_nbytes += op.bus_bytes;
        break;
    }
    return ExecLoad(op);
  }
  if (const auto* g = std::get_if<GemmInsn>(&op.insn)) {
    ++stats.gemm_count;
    if (!g->reset) {
      stats.gemm_counter +=
          uint64_t{g->iter_out} * g->iter_in * (g->uop_end - g->uop_bgn);
    }
    return ExecGemm(*g);
  }
  if (const auto* a = std::get_if<AluInsn>(&op.insn)) {
    ++stats.alu_count;
    stats.alu_counter +=
        uint64_t{a->iter_out} * a->iter_in * (a->uop_end - a->uop_bgn);
    return ExecAlu(*a);
  }
  ++stats.finish_count;
  return absl::OkStatus();
}

absl::StatusOr<RunStats> SimDevice::Run(uint32_t insn_phys_addr,
                                        uint32_t insn_count,
                                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  VTASERVE_ASSIGN_OR_RETURN(std::vector<Op> ops,
                            DecodeAndValidate(insn_phys_addr, insn_count));
  const VtaTiming& t = config_.timing;
  const uint64_t bus_bytes = config_.BusBytes();
  const uint64_t fetch_beats =
      (VtaConfig::kInsnBytes + bus_bytes - 1) / bus_bytes;
  uint64_t timeout_cycles = std::numeric_limits<uint64_t>::max();
  if (timeout != absl::InfiniteDuration()) {
    const double c = absl::ToDoubleSeconds(timeout) * config_.clock_mhz * 1e6;
    timeout_cycles =
        c <= 0 ? 0 : (c >= 1.8e19 ? timeout_cycles : static_cast<uint64_t>(c));
  }

  std::vector<uint32_t> lists[3];
  for (const Op& op : ops)
    lists[op.module].push_back(static_cast<uint32_t>(op.index));
  size_t pc[3] = {0, 0, 0};
  uint64_t free_at[3] = {0, 0, 0};
  uint64_t bus_free[3] = {0, 0, 0};  // [0] only when the bus is shared
  std::deque<uint64_t> tokens[4];    // availability time of each queued token
  // Pop time of every token popped so far and number pushed, per queue: the
  // k-th push into a full queue waits for the (k - depth)-th pop.
  std::vector<uint64_t> pop_times[4];
  uint64_t pushed[4] = {0, 0, 0, 0};
  const size_t queue_depth = static_cast<size_t>(config_.dep_queue_depth);
  SimStats stats;
  stats.insn_count = insn_count;
  stats.insn_fetch_bytes = uint64_t{insn_count} * VtaConfig::kInsnBytes;
  uint64_t end_time = 0;

  for (;;) {
    int best = -1;
    uint64_t best_start = 0, best_ready = 0;
    for (int m = 0; m < 3; ++m) {
      if (pc[m] >= lists[m].size()) continue;
      const Op& op = ops[lists[m][pc[m]]];
      bool ready = true;
      for (int p = 0; p < op.npops; ++p) ready &= !tokens[op.pops[p]].empty();
      for (int p = 0; p < op.npushes; ++p) {
        ready &= tokens[op.pushes[p]].size() < queue_depth;
      }
      if (!ready) continue;
      const uint64_t dispatch = t.fetch_latency + (op.index + 1) * fetch_beats;
      const uint64_t ready_at = std::max(free_at[m], dispatch);
      uint64_t start = ready_at;
      for (int p = 0; p < op.npops; ++p) {
        start = std::max(start, tokens[op.pops[p]].front());
      }
      for (int p = 0; p < op.npushes; ++p) {
        const int q = op.pushes[p];
        if (pushed[q] >= queue_depth) {
          start = std::max(start, pop_times[q][pushed[q] - queue_depth]);
        }
      }
      if (best < 0 || start < best_start ||
          (start == best_start &&
           op.index < ops[lists[best][pc[best]]].index)) {
        best = m;
        best_start = start;
        best_ready = ready_at;
      }
    }
    if (best < 0) break;
    const Op& op = ops[lists[best][pc[best]]];
    const uint64_t start = best_start;

    // Cost of the instruction.
    uint64_t end = start;
    uint64_t* bus = t.shared_dram_bus ? &bus_free[0] : &bus_free[best];
    uint64_t new_bus = *bus;
    if (const auto* g = std::get_if<GemmInsn>(&op.insn)) {
      const uint64_t n =
          uint64_t{g->iter_out} * g->iter_in * (g->uop_end - g->uop_bgn);
      end = start + n * t.gemm_cycles_per_uop + t.gemm_latency;
    } else if (const auto* a = std::get_if<AluInsn>(&op.insn)) {
      const uint64_t n =
          uint64_t{a->iter_out} * a->iter_in * (a->uop_end - a->uop_bgn);
      end = start +
            n * (a->use_imm ? t.alu_imm_cycles_per_uop
                            : t.alu_tensor_cycles_per_uop) +
            t.alu_latency;
    } else if (std::holds_alternative<MemInsn>(op.insn) && !op.nop) {
      const uint64_t beats = (op.bus_bytes + bus_bytes - 1) / bus_bytes;
      const uint64_t xfer = std::max(start + t.mem_request_latency, *bus);
      new_bus = xfer + beats;
      end = new_bus + op.pad_elems * t.pad_cycles_per_element;
      if (op.gather_elems > beats) end = xfer + op.gather_elems;
    } else {
      end = start + t.nop_cycles;
    }
    if (end > timeout_cycles) {
      return absl::DeadlineExceededError(absl::StrCat(
          "VTA run exceeded its timeout of ", absl::FormatDuration(timeout),
          " (", timeout_cycles, " cycles) at instruction ", op.index));
    }
    absl::Status s = Execute(op, stats);
    if (!s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("VTA instruction ", op.index, " (",
                                 isa::ToString(op.insn), "): ", s.message()));
    }
    *bus = new_bus;
    const uint64_t busy = end - start;
    const uint64_t stall = start - best_ready;
    switch (best) {
      case kLoadModule:
        stats.load_busy_cycles += busy;
        stats.load_stall_cycles += stall;
        break;
      case kComputeModule:
        stats.compute_busy_cycles += busy;
        stats.compute_stall_cycles += stall;
        break;
      default:
        stats.store_busy_cycles += busy;
        stats.store_stall_cycles += stall;
    }
    if (std::holds_alternative<GemmInsn>(op.insn)) stats.gemm_cycles += busy;
    if (std::holds_alternative<AluInsn>(op.insn)) stats.alu_cycles += busy;
    for (int p = 0; p < op.npops; ++p) {
      tokens[op.pops[p]].pop_front();
      pop_times[op.pops[p]].push_back(start);
    }
    for (int p = 0; p < op.npushes; ++p) {
      tokens[op.pushes[p]].push_back(end);
      ++pushed[op.pushes[p]];
    }
    free_at[best] = end;
    end_time = std::max(end_time, end);
    ++pc[best];
  }

  std::string blocked;
  for (int m = 0; m < 3; ++m) {
    if (pc[m] >= lists[m].size()) continue;
    const Op& op = ops[lists[m][pc[m]]];
    std::string waits;
    for (int p = 0; p < op.npops; ++p) {
      if (tokens[op.pops[p]].empty()) {
        absl::StrAppend(&waits, " pop ", kQueueNames[op.pops[p]]);
      }
    }
    for (int p = 0; p < op.npushes; ++p) {
      if (tokens[op.pushes[p]].size() >= queue_depth) {
        absl::StrAppend(&waits, " push into full ", kQueueNames[op.pushes[p]]);
      }
    }
    absl::StrAppend(&blocked, blocked.empty() ? "" : "; ", kModuleNames[m],
                    " module at instruction ", op.index, " waits for", waits);
  }
  if (!blocked.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VTA instruction stream deadlocks: ", blocked));
  }
  for (const auto& q : tokens) stats.leftover_tokens += q.size();
  stats.cycles_total = end_time;
  cumulative_ += stats;
  RunStats r;
  r.cycles = end_time;
  r.device_seconds = static_cast<double>(end_time) / (config_.clock_mhz * 1e6);
  r.sim = stats;
  return r;
}
}  // namespace vtaserve::vta::sim
