#include "vta_backend/config.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "proto/vta_config.pb.h"
#include "vta_backend/isa/field_layout.h"

namespace vtaserve::vta {
namespace {

constexpr int kOpcodeBits = 3;
constexpr int kLoopIterBits = 14;
constexpr int kAluOpcodeBits = 3;
constexpr int kAluImmBits = 16;
constexpr int kSramAddrBits = 16;  // MemInsn sram_base

absl::Status CheckRange(absl::string_view key, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config ", key, " = ", value, " is outside [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

bool IsKnownTarget(absl::string_view t) {
  for (absl::string_view k :
       {"sim", "tsim", "pynq", "ultra96", "zcu104", "de10nano", "intelfocl"}) {
    if (t == k) return true;
  }
  return false;
}

}  // namespace

std::string VtaConfig::BitstreamName() const {
  return absl::StrFormat(
      "%dx%d_i%dw%da%d_%d_%d_%d_%d", Batch(), BlockIn(), 1 << log_inp_width,
      1 << log_wgt_width, 1 << log_acc_width, log_uop_buff_size,
      log_inp_buff_size, log_wgt_buff_size, log_acc_buff_size);
}

absl::Status VtaConfig::Validate() const {
  if (!IsKnownTarget(target)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config TARGET \"", target,
        "\" is not one of sim, tsim, pynq, ultra96, zcu104, de10nano, "
        "intelfocl"));
  }
  if (log_inp_width != 3 || log_wgt_width != 3 || log_acc_width != 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config: only 8-bit inputs/weights and 32-bit accumulators are "
        "supported (LOG_INP_WIDTH=3, LOG_WGT_WIDTH=3, LOG_ACC_WIDTH=5), got ",
        log_inp_width, "/", log_wgt_width, "/", log_acc_width));
  }
  VTASERVE_RETURN_IF_ERROR(CheckRange("LOG_BATCH", log_batch, 0, 4));
  VTASERVE_RETURN_IF_ERROR(CheckRange("LOG_BLOCK_IN", log_block_in, 1, 6));
  VTASERVE_RETURN_IF_ERROR(CheckRange("LOG_BLOCK_OUT", log_block_out, 1, 6));
  VTASERVE_RETURN_IF_ERROR(CheckRange("LOG_BUS_WIDTH", log_bus_width, 3, 10));
  for (auto [key, v] :
       {std::pair<const char*, int>{"LOG_UOP_BUFF_SIZE", log_uop_buff_size},
        {"LOG_INP_BUFF_SIZE", log_inp_buff_size},
        {"LOG_WGT_BUFF_SIZE", log_wgt_buff_size},
        {"LOG_ACC_BUFF_SIZE", log_acc_buff_size}}) {
    // Up to 16 MiB per buffer; anything larger is not an FPGA SRAM.
    VTASERVE_RETURN_IF_ERROR(CheckRange(key, v, 3, 24));
  }
  // Element sizes must divide the 4 KiB page so phys/elem_bytes is exact
  // (vta-isa.md 7.2).
  for (auto [name, bytes] : {std::pair<const char*, int>{"INP", InpElemBytes()},
                             {"WGT", WgtElemBytes()},
                             {"ACC", AccElemBytes()}}) {
    if (bytes > 4096) {
      return absl::InvalidArgumentError(absl::StrCat(
          "VTA config: ", name, " element of ", bytes,
          " bytes exceeds the 4096-byte page (reduce LOG_BATCH/LOG_BLOCK)"));
    }
  }
  // Buffer depths: at least 2 elements, at most what the 16-bit sram_base
  // field can address.
  for (auto [name, log_depth] :
       {std::pair<const char*, int>{"UOP", LogUopDepth()},
        {"INP", LogInpDepth()},
        {"WGT", LogWgtDepth()},
        {"ACC", LogAccDepth()}}) {
    if (log_depth < 1 || log_depth > kSramAddrBits) {
      return absl::InvalidArgumentError(absl::StrCat(
          "VTA config: ", name, " buffer depth 2^", log_depth,
          " elements is outside [2, 2^", kSramAddrBits, "] (check LOG_", name,
          "_BUFF_SIZE against the element size)"));
    }
  }
  const int uop_bits = LogAccDepth() + UopSrcBits() + LogWgtDepth();
  if (uop_bits > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("VTA config: uop fields need ", uop_bits, " bits (dst ",
                     LogAccDepth(), " + src ", UopSrcBits(), " + wgt ",
                     LogWgtDepth(), ") but a uop is 32 bits"));
  }
  const std::vector<int> common = {kOpcodeBits,
                                   1,
                                   1,
                                   1,
                                   1,
                                   1,
                                   LogUopDepth(),
                                   LogUopDepth() + 1,
                                   kLoopIterBits,
                                   kLoopIterBits,
                                   LogAccDepth(),
                                   LogAccDepth(),
                                   SrcFactorBits(),
                                   SrcFactorBits()};
  std::vector<int> gemm = common;
  gemm.insert(gemm.end(), {LogWgtDepth(), LogWgtDepth()});
  std::vector<int> alu = common;
  alu.insert(alu.end(), {kAluOpcodeBits, 1, kAluImmBits});
  if (auto s = isa::PackBitfields(gemm, 2); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config: GEMM instruction fields do not fit 128 bits: ",
        s.status().message()));
  }
  if (auto s = isa::PackBitfields(alu, 2); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("VTA config: ALU instruction fields do not fit 128 bits: ",
                     s.status().message()));
  }
  if (!(clock_mhz > 0.0 && clock_mhz <= 10000.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VTA config: clock ", clock_mhz, " MHz is not sane"));
  }
  const bool functional_target = target == "sim" || target == "intelfocl";
  if (has_mul && !functional_target) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config: HAS_MUL is only implemented by fsim and intelfocl, not "
        "TARGET ",
        target));
  }
  if (has_acc_8bit_load && !functional_target) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VTA config: HAS_ACC_8BIT_LOAD is only implemented by fsim and "
        "intelfocl, not TARGET ",
        target));
  }
  VTASERVE_RETURN_IF_ERROR(
      CheckRange("DEP_QUEUE_DEPTH", dep_queue_depth, 1, 1 << 20));
  const VtaTiming& t = timing;
  VTASERVE_RETURN_IF_ERROR(
      CheckRange("TIMING.GEMM_CYCLES_PER_UOP", t.gemm_cycles_per_uop, 1, 1024));
  VTASERVE_RETURN_IF_ERROR(CheckRange("TIMING.ALU_IMM_CYCLES_PER_UOP",
                                      t.alu_imm_cycles_per_uop, 1, 1024));
  VTASERVE_RETURN_IF_ERROR(CheckRange("TIMING.ALU_TENSOR_CYCLES_PER_UOP",
                                      t.alu_tensor_cycles_per_uop, 1, 1024));
  for (auto [key, v] :
       {std::pair<const char*, int>{"TIMING.GEMM_LATENCY", t.gemm_latency},
        {"TIMING.ALU_LATENCY", t.alu_latency},
        {"TIMING.MEM_REQUEST_LATENCY", t.mem_request_latency},
        {"TIMING.PAD_CYCLES_PER_ELEMENT", t.pad_cycles_per_element},
        {"TIMING.NOP_CYCLES", t.nop_cycles},
        {"TIMING.FETCH_LATENCY", t.fetch_latency}}) {
    VTASERVE_RETURN_IF_ERROR(CheckRange(key, v, 0, 1 << 20));
  }
  return absl::OkStatus();
}

absl::StatusOr<VtaConfig> VtaConfigPreset(absl::string_view name) {
  VtaConfig c;  // pynq defaults
  if (name == "pynq") {
  } else if (name == "1x32x32") {
    c.log_block_in = c.log_block_out = 5;
    // Keep the default depths (2048 inp / 1024 wgt would be 512 KiB...):
    // double INP/ACC/WGT bytes so inp and acc stay 2048 deep, wgt 512.
    c.log_inp_buff_size = 16;
    c.log_wgt_buff_size = 19;
    c.log_acc_buff_size = 18;
  } else if (name == "ultra96" || name == "zcu104") {
    c.target = std::string(name);
    if (name == "zcu104") c.hw_ver = "0.0.1";
    c.clock_mhz = 333.0;
    c.log_bus_width = 7;
  } else if (name == "de10nano") {
    c.target = "de10nano";
    c.dep_queue_depth = 255;
  } else if (name == "fsim" || name == "sim") {
    c.target = "sim";
    c.has_mul = true;
    c.has_acc_8bit_load = true;
  } else if (name == "tsim") {
    c.target = "tsim";
    c.dep_queue_depth = 255;
  } else if (name == "intelfocl") {
    c.target = "intelfocl";
    c.has_mul = true;
    c.has_acc_8bit_load = true;
  } else {
    return absl::NotFoundError(absl::StrCat(
        "unknown VTA config preset \"", name,
        "\" (known: pynq, 1x32x32, ultra96, zcu104, de10nano, fsim, sim, "
        "tsim, intelfocl)"));
  }
  VTASERVE_RETURN_IF_ERROR(c.Validate());
  return c;
}

absl::StatusOr<VtaConfig> ParseVtaConfigJson(absl::string_view json) {
  vta_config::VtaConfigJson m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parse_status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &m, options);
  if (!parse_status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid vta_config.json: ", std::string(parse_status.message())));
  }
  std::string preset = m.has_target() ? m.target() : "pynq";
  if (preset == "sim") preset = "fsim";
  auto base = VtaConfigPreset(preset);
  if (!base.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("vta_config.json: unknown TARGET \"", m.target(), "\""));
  }
  VtaConfig c = *std::move(base);
  if (m.has_hw_ver()) c.hw_ver = m.hw_ver();
  if (m.has_log_inp_width()) c.log_inp_width = m.log_inp_width();
  if (m.has_log_wgt_width()) c.log_wgt_width = m.log_wgt_width();
  if (m.has_log_acc_width()) c.log_acc_width = m.log_acc_width();
  if (m.has_log_batch()) c.log_batch = m.log_batch();
  if (m.has_log_block()) c.log_block_in = c.log_block_out = m.log_block();
  if (m.has_log_block_in()) {
    if (m.has_log_block() && m.log_block_in() != m.log_block()) {
      return absl::InvalidArgumentError(
          "vta_config.json: LOG_BLOCK_IN disagrees with LOG_BLOCK");
    }
    c.log_block_in = m.log_block_in();
  }
  if (m.has_log_block_out()) {
    if (m.has_log_block() && m.log_block_out() != m.log_block()) {
      return absl::InvalidArgumentError(
          "vta_config.json: LOG_BLOCK_OUT disagrees with LOG_BLOCK");
    }
    c.log_block_out = m.log_block_out();
  }
  if (m.has_log_uop_buff_size()) c.log_uop_buff_size = m.log_uop_buff_size();
  if (m.has_log_inp_buff_size()) c.log_inp_buff_size = m.log_inp_buff_size();
  if (m.has_log_wgt_buff_size()) c.log_wgt_buff_size = m.log_wgt_buff_size();
  if (m.has_log_acc_buff_size()) c.log_acc_buff_size = m.log_acc_buff_size();
  if (m.has_log_bus_width()) c.log_bus_width = m.log_bus_width();
  if (m.has_hw_freq()) c.clock_mhz = m.hw_freq();
  if (m.has_has_mul()) c.has_mul = m.has_mul();
  if (m.has_has_acc_8bit_load()) c.has_acc_8bit_load = m.has_acc_8bit_load();
  if (m.has_ext_im2col_load()) c.ext_im2col_load = m.ext_im2col_load();
  if (m.has_dep_queue_depth()) c.dep_queue_depth = m.dep_queue_depth();
  if (m.has_timing()) {
    const auto& t = m.timing();
    VtaTiming& d = c.timing;
    if (t.has_gemm_cycles_per_uop())
      d.gemm_cycles_per_uop = t.gemm_cycles_per_uop();
    if (t.has_gemm_latency()) d.gemm_latency = t.gemm_latency();
    if (t.has_alu_imm_cycles_per_uop())
      d.alu_imm_cycles_per_uop = t.alu_imm_cycles_per_uop();
    if (t.has_alu_tensor_cycles_per_uop())
      d.alu_tensor_cycles_per_uop = t.alu_tensor_cycles_per_uop();
    if (t.has_alu_latency()) d.alu_latency = t.alu_latency();
    if (t.has_mem_request_latency())
      d.mem_request_latency = t.mem_request_latency();
    if (t.has_pad_cycles_per_element())
      d.pad_cycles_per_element = t.pad_cycles_per_element();
    if (t.has_nop_cycles()) d.nop_cycles = t.nop_cycles();
    if (t.has_fetch_latency()) d.fetch_latency = t.fetch_latency();
    if (t.has_shared_dram_bus()) d.shared_dram_bus = t.shared_dram_bus();
  }
  if (m.has_log_out_width() && m.log_out_width() != c.LogOutWidth()) {
    return absl::InvalidArgumentError(
        "vta_config.json: LOG_OUT_WIDTH must equal LOG_INP_WIDTH");
  }
  if (m.has_log_out_buff_size() &&
      m.log_out_buff_size() !=
          c.log_acc_buff_size + c.LogOutWidth() - c.log_acc_width) {
    return absl::InvalidArgumentError(
        "vta_config.json: LOG_OUT_BUFF_SIZE must equal LOG_ACC_BUFF_SIZE + "
        "LOG_OUT_WIDTH - LOG_ACC_WIDTH");
  }
  VTASERVE_RETURN_IF_ERROR(c.Validate());
  return c;
}

absl::StatusOr<VtaConfig> LoadVtaConfig(absl::string_view path_or_preset) {
  auto preset = VtaConfigPreset(path_or_preset);
  if (preset.ok() || !absl::IsNotFound(preset.status())) return preset;
  std::ifstream in{std::string(path_or_preset)};
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("\"", path_or_preset,
                     "\" is neither a VTA config preset nor a "
                     "readable vta_config.json file"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseVtaConfigJson(ss.str());
  if (!config.ok()) {
    return AnnotateStatus(config.status(), std::string(path_or_preset));
  }
  return config;
}

}  // namespace vtaserve::vta
