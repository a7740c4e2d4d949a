#include "vta_backend/device.h"

namespace vtaserve::vta {

SimStats& SimStats::operator+=(const SimStats& o) {
  inp_load_nbytes += o.inp_load_nbytes;
  wgt_load_nbytes += o.wgt_load_nbytes;
  acc_load_nbytes += o.acc_load_nbytes;
  uop_load_nbytes += o.uop_load_nbytes;
  out_store_nbytes += o.out_store_nbytes;
  gemm_counter += o.gemm_counter;
  alu_counter += o.alu_counter;
  cycles_total += o.cycles_total;
  load_busy_cycles += o.load_busy_cycles;
  compute_busy_cycles += o.compute_busy_cycles;
  store_busy_cycles += o.store_busy_cycles;
  load_stall_cycles += o.load_stall_cycles;
  compute_stall_cycles += o.compute_stall_cycles;
  store_stall_cycles += o.store_stall_cycles;
  gemm_cycles += o.gemm_cycles;
  alu_cycles += o.alu_cycles;
  for (size_t i = 0; i < dram_bytes_by_type.size(); ++i) {
    dram_bytes_by_type[i] += o.dram_bytes_by_type[i];
  }
  insn_fetch_bytes += o.insn_fetch_bytes;
  insn_count += o.insn_count;
  load_count += o.load_count;
  store_count += o.store_count;
  gemm_count += o.gemm_count;
  alu_count += o.alu_count;
  nop_count += o.nop_count;
  finish_count += o.finish_count;
  leftover_tokens += o.leftover_tokens;
  return *this;
}

}  // namespace vtaserve::vta
