// The input layout of the VTA instruction-stream fuzz target, shared with
// its seed generator:
//   byte 0: config flags (bit 0 has_mul, bit 1 has_acc_8bit_load, bit 2
//           ext_im2col_load, bit 3 LOG_BATCH = 1)
//   byte 1: instruction count (at most kMaxInsns)
//   byte 2: uop count (at most kMaxUops)
//   then count x 16 instruction bytes, count x 4 uop bytes, and the rest
//   (at most kDataBytes) is the data buffer's contents.
// A fresh simulator with small SRAMs allocates, in this order, the uop
// buffer (one page at kUopPhys), the data buffer (kDataBytes at kDataPhys)
// and the instruction buffer, so instructions can address both.
#ifndef VTASERVE_TESTS_FUZZ_VTA_SIM_FUZZ_H_
#define VTASERVE_TESTS_FUZZ_VTA_SIM_FUZZ_H_

#include <cstddef>
#include <cstdint>

#include "vta_backend/config.h"

namespace vtaserve::fuzz {

inline constexpr size_t kVtaMaxInsns = 64;
inline constexpr size_t kVtaMaxUops = 256;
inline constexpr size_t kVtaDataBytes = 16384;
inline constexpr uint32_t kVtaUopPhys = 4096;
inline constexpr uint32_t kVtaDataPhys = 8192;

// The pynq preset with small SRAMs (fast to create per input) and the
// optional features of `flags`.
inline vta::VtaConfig SmallVtaConfig(uint8_t flags,
                                     const vta::VtaConfig& base) {
  vta::VtaConfig c = base;
  c.log_uop_buff_size = 10;  // 256 uops
  c.log_inp_buff_size = 10;
  c.log_wgt_buff_size = 13;
  c.log_acc_buff_size = 12;
  // MUL and ACC_8BIT loads exist only on fsim ("sim") and intelfocl.
  if (flags & 3) c.target = "sim";
  c.has_mul = flags & 1;
  c.has_acc_8bit_load = flags & 2;
  c.ext_im2col_load = flags & 4;
  if (flags & 8) c.log_batch = 1;
  return c;
}

}  // namespace vtaserve::fuzz

#endif  // VTASERVE_TESTS_FUZZ_VTA_SIM_FUZZ_H_
