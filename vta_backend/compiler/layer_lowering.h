// Lowering of one int8 layer (conv2d, dense as a 1x1 conv, residual add) to
// a VTA instruction stream: the tile search (PlanConv / PlanAdd, minimising
// an analytic model of the simulator's cycle model under the SRAM limits)
// and the emission into a CommandQueue (EmitConv / EmitAdd) following
// vta-isa.md 9.9: double buffering through dependency tokens (two halves of
// the INP, WGT and ACC buffers), uop kernels reused across tiles, and an
// epilogue made only of portable ALU ops (ADD, SHR by -15..15, MIN, MAX)
// whose last writer of every stored element is an ALU op.
//
// Activations live in DRAM as bordered, blocked tensors (ActivationLayout):
// [blocks][H + 2*border][W + 2*border][BLOCK] int8, border pre-filled with the
// tensor's zero point, so conv loads never need (zero-only) VTA padding.
// Pure functions over plain structs; thread-safe.
#ifndef VTASERVE_VTA_BACKEND_COMPILER_LAYER_LOWERING_H_
#define VTASERVE_VTA_BACKEND_COMPILER_LAYER_LOWERING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vta_backend/config.h"
#include "vta_backend/runtime/command_queue.h"

namespace vtaserve::vta::compiler {

// DRAM image of an activation tensor (batch 1): `blocks` channel blocks of
// BLOCK lanes, each an (h + 2*border) x (w + 2*border) plane of elements.
struct ActivationLayout {
  int channels = 0;  // real channels (<= blocks * BLOCK)
  int blocks = 0;
  int h = 0, w = 0;
  int border = 0;

  int PaddedH() const { return h + 2 * border; }
  int PaddedW() const { return w + 2 * border; }
  int64_t PlaneElems() const { return int64_t{PaddedH()} * PaddedW(); }
  int64_t Elems() const { return PlaneElems() * blocks; }
  // Element index of interior pixel (y, x) of block b.
  int64_t ElemIndex(int b, int y, int x) const {
    return b * PlaneElems() + int64_t{y + border} * PaddedW() + (x + border);
  }
};

// Host packing: NCHW int8 [channels][h][w] -> the layout's image (`lanes`
// bytes per element), interior only; the caller pre-fills borders and padded
// channels. Unpack is the inverse (padded channels dropped).
void PackActivation(const ActivationLayout& layout, int lanes,
                    const int8_t* nchw, int8_t* image);
void UnpackActivation(const ActivationLayout& layout, int lanes,
                      const int8_t* image, int8_t* nchw);

// A conv (or dense) layer reduced to what the lowering needs.
struct ConvLayer {
  ActivationLayout in, out;  // out.blocks may exceed the real channels
  int kh = 1, kw = 1, sh = 1, sw = 1;
  int pad_top = 0, pad_left = 0;  // bottom/right implied by out.h / out.w
  // Per output block: SHR amount in [-15, 30].
  std::vector<int32_t> block_shift;
  // true: output_zero_point is folded into the bias (bias + (zp << s), only
  // when provably overflow-free), so the epilogue is SHR, MIN hi, MAX lo.
  // false: SHR, MIN hi - zp, MAX lo - zp, ADD zp.
  bool zp_folded = false;
  // true: the bias (zero-point folded as above) is already part of the
  // GEMM (constant input lanes, see first_conv.h): no bias load and no
  // tensor ALU add in the epilogue.
  bool bias_in_gemm = false;
  // Device-side im2col (VtaConfig::ext_im2col_load) when gather_kh > 0: the
  // input blocks are gathered by LOAD INP_IM2COL (CommandQueue::LoadIm2col)
  // from a bordered HWC byte image of row pitch gather_row_bytes whose byte
  // address is ConvAddrs::inp; `in` is then only the 1x1 conv's SRAM view.
  // Tiles take every input block (ci_t = all) and any width.
  int gather_kh = 0, gather_kw = 0, gather_channels = 0, gather_stride = 1;
  int gather_row_bytes = 0;
  int32_t output_zero_point = 0;
  int32_t clamp_min = -128, clamp_max = 127;
};

// Tile sizes of a conv layer.
struct ConvTiling {
  int h_t = 1, w_t = 1;       // output rows / columns per tile
  int co_t = 1, ci_t = 1;     // output / input channel blocks per tile
  bool wgt_resident = false;  // all weights loaded once (requires ci_t = all)
  // Analytic estimate of the whole layer, cycles (see PlanConv).
  uint64_t est_cycles = 0;
  std::string ToString() const;
};

// Device addresses of a conv layer's operands, in element units of each
// memory type (dram_base values of vta-isa.md 2.2).
struct ConvAddrs {
  uint32_t inp = 0;   // INP elem address of element 0 of the input image
  uint32_t wgt = 0;   // WGT elem address of the packed weights
  uint32_t bias = 0;  // ACC elem address of the packed bias
  uint32_t out = 0;   // OUT elem address of element 0 of the output image
};

// Checks the geometry (borders large enough, sizes consistent, fields fit)
// and searches tilings; ResourceExhausted when no tiling fits the SRAMs,
// InvalidArgument for an inconsistent layer. Requires BATCH == 1 and
// BLOCK_IN == BLOCK_OUT (the caller checks; InvalidArgument otherwise).
absl::StatusOr<ConvTiling> PlanConv(const VtaConfig& config,
                                    const ConvLayer& layer);

// Appends the layer's instructions to `queue` (which must be fresh: the
// caller finalizes it). Weights are packed as OIHW{BO}o{BI}i with
// out.blocks output blocks; bias as out.blocks ACC elements.
absl::Status EmitConv(CommandQueue& queue, const ConvLayer& layer,
                      const ConvTiling& tiling, const ConvAddrs& addrs);

// Residual add y = clamp(((a*ma + b*mb + bias) >> shift) + zp) of two
// activations of equal shape, computed as GEMMs with diagonal weight
// blocks (ma = hi*128 + lo) so no int8 tensor reaches the accumulator
// except through GEMM.
struct AddLayer {
  ActivationLayout a, b, out;  // same blocks, h, w; borders may differ
  int32_t multiplier_a = 0, multiplier_b = 0;  // [0, 16383]
  int32_t bias = 0;                            // zp-folded when zp_folded
  int32_t shift = 0;                           // [0, 30]
  bool zp_folded = false;
  int32_t output_zero_point = 0;
  int32_t clamp_min = -128, clamp_max = 127;
};

struct AddTiling {
  int c_t = 1, h_t = 1;  // blocks and rows per tile (full width)
  uint64_t est_cycles = 0;
};

struct AddAddrs {
  uint32_t a = 0, b = 0;  // INP elem addresses of element 0 of each image
  uint32_t wgt = 0;       // WGT elem address of the 4 diagonal blocks
  uint32_t out = 0;
};

// The four diagonal weight blocks [hi_a, hi_b, lo_a, lo_b] (BO x BI int8
// each, row-major [o][k]).
std::vector<int8_t> PackAddWeights(const VtaConfig& config,
                                   const AddLayer& layer);

// As PlanConv / EmitConv for the add. The bias must satisfy
// AddBiasSupported (checked; InvalidArgument otherwise).
absl::StatusOr<AddTiling> PlanAdd(const VtaConfig& config,
                                  const AddLayer& layer);
absl::Status EmitAdd(CommandQueue& queue, const AddLayer& layer,
                     const AddTiling& tiling, const AddAddrs& addrs);
// True when `bias` can be applied with at most a few ALU immediates.
bool AddBiasSupported(int32_t bias);

}  // namespace vtaserve::vta::compiler

#endif  // VTASERVE_VTA_BACKEND_COMPILER_LAYER_LOWERING_H_
