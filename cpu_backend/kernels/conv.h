// int8 convolution (and Dense, as a 1x1 conv) for the CPU backend.
//
// PackConv runs once at Compile: it chooses the reduction scheme, reorders
// the weights into 16-output-channel blocks for one ISA path and folds what
// can be folded into the bias. Execution is two range-based passes that the
// caller spreads over threads (Winograd adds its input transform between
// them, or fuses it into the second per pixel group):
//   1. ConvPackInput: rows of the zero-point-padded input, in the kernel's
//      operand encoding (u8 = x ^ 0x80 for the VNNI-style paths, int16 for
//      AVX2), so the inner loops never test bounds;
//   2. a ConvS8* kernel over "units" (a group of kConvUnitPixels output
//      pixels, flattened over rows, x one output-channel block), writing
//      int8 NHWC with the requantization of engine/graph.h. Pixel tiles run
//      across row ends, so small images (7x7, 14x14) pay for one partial
//      tile per block, not one per row.
// Unit order: pixel-major (all blocks of a pixel group, then the next
// group) when the packed weights are small enough to stay cached, so each
// thread writes whole output pixels (no false sharing of output lines and
// the weights are read from cache); block-major otherwise, so a thread
// streams each weight block once and reuses it over every pixel.
// Two reduction schemes:
//   - direct: one tap per (kh, kw), reducing over the channels padded to
//     the path's reduction step (4; 2 for AVX2);
//   - window (stems with few input channels, e.g. RGB): one tap per kh,
//     reducing over the contiguous (kw x C_in) run of the padded NHWC row,
//     padded with zero weights to the path's reduction step (4; 2 for the
//     AVX2 int16 pairs), so the KxKx3 window is the reduction axis without
//     an im2col copy.
// Winograd F(2x2, 3x3) (AVX2, 3x3 stride-1 undilated convs, C_in >= 8 and
// not the window scheme), exact in
// integers: the weights are transformed with 2G (U = 4 G g G^T, |U| <= 1152)
// and the padded input tiles with B^T (|V| <= 512), both int16; the 16
// products are summed over the channels with vpmaddwd in int32 and A^T M A
// gives 4x the plain sum of x * w, so an arithmetic shift by 2 recovers it
// bit for bit while |sum| < 2^29 (9 * C_in * 2^14 < 2^29: C_in <= 3640,
// checked at PackConv). The bias is added after the shift. A^T M A is a
// ring identity, so int32 wrap-around in between changes nothing, and
// tiles that overhang the image read bounded padding whose effect cancels.
// The multiplies drop from 36 to 16 per 2x2 outputs (2.25x).
// Row pairs (AVX2, window-scheme stems with 7 kernel rows, stride 2 and no
// row dilation, C_in <= kRowPairMaxChannels, e.g. ResNet's 7x7/s2 RGB stem):
// the window scheme along the rows is a 1-D convolution of whole padded
// rows (each a vector over (column, channel)); output rows 2q and 2q+1 read
// padded rows 4q..4q+8. Its even kernel rows (0, 2, 4, 6) see the even
// padded rows and its odd ones (1, 3, 5) the odd rows, so each half is a
// stride-1 1-D conv: F(2,3) on kernel rows (1, 3, 5) and on (0, 2, 4), and
// kernel row 6 directly. Ten transformed rows V per output-row pair (the
// padded rows' sums and differences, |V| <= 256) meet ten transformed
// weight rows U (2G g, |U| <= 384), each reduced over the (kw x C_in)
// window like a window tap; then
//   2 y(2q)   = M0 + M1 + M2 + M4 + M5 + M6 + M8
//   2 y(2q+1) = M1 - M2 - M3 + M5 - M6 - M7 + M9,
// a ring identity whose true value fits int32 (C_in bound), so >> 1 is
// exact; the bias is added after it. 10 reductions per two output pixels
// instead of 14 (1.4x fewer multiplies). Units cover output-pixel pairs
// (one pixel of row 2q and the one below it), flattened over q and the
// columns; an odd last row is computed and not stored.
// u8 x s8: the engine's activations are int8; the VNNI-style paths add 128
// (x ^ 0x80) and fold -128 * sum(w) into the bias, exact in wrapping int32.
// All functions are thread-safe on distinct output ranges; none allocates.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_CONV_H_
#define VTASERVE_CPU_BACKEND_KERNELS_CONV_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "cpu_backend/cpu_isa.h"
#include "cpu_backend/kernels/layout.h"
#include "engine/graph.h"

namespace vtaserve::cpu {

inline constexpr int kConvOcBlock = 16;  // output channels per weight block
// Output pixels per unit: a multiple of every kernel's tile width (6, 12).
inline constexpr int kConvUnitPixels = 24;
// Packed weights up to this size make the unit order pixel-major.
inline constexpr int64_t kConvPixelMajorWeightBytes = 256 * 1024;
// The same for Winograd, whose pixel-major order is the fused form (each
// thread transforms its pixel groups and runs every block on them): up to
// 1 MiB (ResNet's 3x3 convs with 128 channels, 512 KiB, gained 23% on two
// threads over the separate transform and block-major units; its 256-
// channel ones, 2 MiB with only 3 pixel groups at 14x14, did not).
inline constexpr int64_t kConvWinogradPixelMajorWeightBytes = 1024 * 1024;
// Row pairs (see above): transformed rows per output-row pair, and the
// input channels they are used for (stems; the int32 bound is far higher).
inline constexpr int kRowPairPoints = 10;
inline constexpr int kRowPairMaxChannels = 16;
// The transformed rows in tap order, grouped by their coefficients in
// (2 y(2q), 2 y(2q+1)): (+, 0): 0, 4, 8; (+, +): 1, 5; (+, -): 2, 6;
// (0, -): 3, 7; (0, +): 9. kRowPairGroupEnd[g] ends group g's taps.
inline constexpr int kRowPairOrder[kRowPairPoints] = {0, 4, 8, 1, 5,
                                                      2, 6, 3, 7, 9};
inline constexpr int kRowPairGroups = 5;
inline constexpr int kRowPairGroupEnd[kRowPairGroups] = {3, 5, 7, 9, 10};

struct PackedConv {
  CpuIsa isa = CpuIsa::kScalar;  // concrete (never kAuto)
  bool window = false;           // window reduction (see above)
  int cin = 0, cout = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pt = 0, pl = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  // Padded input buffer: hp rows x wp pixels x cbuf channels of elem_size
  // bytes, plus kSlack elements after the end (window over-reads <= 3).
  int64_t hp = 0, wp = 0;
  int cbuf = 0;
  int elem_size = 1;
  int taps = 1;  // reduction taps
  int kred = 4;  // reduction length per tap: a multiple of 4 (2 for AVX2)
  int ocb = 1;   // output-channel blocks of kConvOcBlock
  int64_t pixel_groups = 0;  // ceil(unit_items / kConvUnitPixels)
  bool pixel_major = false;  // unit order (see above)
  // Winograd F(2x2, 3x3) (see above): units cover 2x2 output tiles.
  bool winograd = false;
  int64_t tiles_h = 0, tiles_w = 0;  // ceil(out / 2)
  // Row pairs (see above): units cover out_pairs * out_w pixel pairs; the
  // transformed input is [out_pairs][kRowPairPoints][v_row] int16.
  bool row_pairs = false;
  int64_t out_pairs = 0;   // ceil(out_h / 2)
  int64_t v_row = 0;       // elements per transformed row (wp * cbuf + slack)
  int64_t unit_items = 0;  // out_h * out_w pixels, tiles or pixel pairs
  std::vector<int64_t> tap_off;  // element offset of each tap
  // Weights [ocb][taps][kred/4][16][4] int8 (scalar, VNNI paths) or
  // [ocb][taps][kred/2][16][2] int16 (AVX2; Winograd: 16 taps of U).
  std::vector<int8_t> w8;
  std::vector<int16_t> w16;
  // Per output channel, padded to ocb * 16.
  std::vector<int32_t> bias;    // folded for the u8 encoding when needed
  std::vector<int32_t> rshift;  // max(shift, 0)
  std::vector<int32_t> lshift;  // max(-shift, 0)
  int32_t lo = -128, hi = 127;  // clamp_min - zp, clamp_max - zp
  int32_t out_zp = 0;
  int32_t in_zp = 0;  // int8 domain, the padding value

  static constexpr int64_t kSlack = 64;
  // Winograd tiles read up to one row and one pixel past the padded image.
  int64_t BufferBytes() const {
    const int64_t extra = winograd ? wp * cbuf + cbuf : 0;
    return (hp * wp * cbuf + extra + kSlack) * elem_size;
  }
  int64_t Units() const { return pixel_groups * ocb; }
  // Multiply-accumulates of one full unit (the kernel's executed work,
  // padding of the reduction included): sizes blocks of units for the
  // thread pool.
  int64_t UnitMacs() const {
    const int64_t reduction =
        winograd ? int64_t{16} * kred : int64_t{taps} * kred;
    return int64_t{kConvUnitPixels} * kConvOcBlock * reduction;
  }
  int64_t Tiles() const { return tiles_h * tiles_w; }
  // The transformed input the kernel reads instead of the padded buffer:
  // Winograd [16][Tiles()][cbuf] int16, row pairs (see above); 0 otherwise.
  int64_t TransformedBytes() const {
    if (winograd) return 16 * Tiles() * cbuf * 2;
    if (row_pairs) return out_pairs * kRowPairPoints * v_row * 2;
    return 0;
  }
};

// One unit of work: output pixels [pix_begin, pix_end) (flattened oh * out_w
// + ow; Winograd: tiles, flattened ti * tiles_w + tj) of output-channel
// block `block`.
struct ConvUnit {
  int block = 0;
  int64_t pix_begin = 0, pix_end = 0;
};
ConvUnit DecodeConvUnit(const PackedConv& pc, int64_t unit);

// Prepares `p` (validated) for an input of in_h x in_w and the given output
// size on the concrete path `isa`; Winograd or row pairs (1-D Winograd)
// where they apply unless `allow_winograd` is false. InvalidArgument for
// kAuto.
absl::StatusOr<PackedConv> PackConv(const engine::ConvParams& p, int64_t in_h,
                                    int64_t in_w, int64_t out_h, int64_t out_w,
                                    CpuIsa isa, bool allow_winograd = true);

// Writes padded-buffer rows [row_begin, row_end) (of pc.hp) from int8 input
// x with element strides `s`. REQUIRES: buf holds pc.BufferBytes(),
// zero-initialised once (the slack and the Winograd overhang past the rows
// are read, never written).
void ConvPackInput(const PackedConv& pc, const int8_t* x, const Strides& s,
                   uint8_t* buf, int64_t row_begin, int64_t row_end);

// Row pairs only (pc.row_pairs): writes the transformed rows of output-row
// pairs [pair_begin, pair_end) of pc.out_pairs from the padded buffer `buf`
// into `v` (pc.TransformedBytes()).
void ConvRowPairsInputAvx2(const PackedConv& pc, const uint8_t* buf, uint8_t* v,
                           int64_t pair_begin, int64_t pair_end);

// Row pairs only: for output-row pairs [pair_begin, pair_end), transforms
// the pair's rows into `v` and at once runs every output-channel block on
// them, so they are read from cache (the fused form of
// ConvRowPairsInputAvx2 + the kernel).
void ConvRowPairsGroupsAvx2(const PackedConv& pc, const uint8_t* buf,
                            uint8_t* v, int8_t* y, int64_t pair_begin,
                            int64_t pair_end);

// Winograd only (pc.winograd): transforms tiles [tile_begin, tile_end) of
// pc.Tiles() from the padded buffer `buf` into `v` (pc.TransformedBytes()).
void ConvWinogradInputAvx2(const PackedConv& pc, const uint8_t* buf, uint8_t* v,
                           int64_t tile_begin, int64_t tile_end);

// Winograd only: for pixel groups [group_begin, group_end) (of
// pc.pixel_groups), transforms the group's tiles into `v` and at once runs
// every output-channel block on them, so the transformed tiles are read
// from cache (the fused form of ConvWinogradInputAvx2 + the kernel).
void ConvWinogradGroupsAvx2(const PackedConv& pc, const uint8_t* buf,
                            uint8_t* v, int8_t* y, int64_t group_begin,
                            int64_t group_end);

// Computes units [unit_begin, unit_end) of pc.Units() (see DecodeConvUnit)
// from the packed buffer (Winograd, row pairs: the transformed input) into y,
// int8 NHWC [out_h][out_w][cout].
using ConvKernelFn = void (*)(const PackedConv& pc, const uint8_t* buf,
                              int8_t* y, int64_t unit_begin, int64_t unit_end);
void ConvS8Ref(const PackedConv& pc, const uint8_t* buf, int8_t* y,
               int64_t unit_begin, int64_t unit_end);
void ConvS8Avx2_6x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                     int64_t unit_begin, int64_t unit_end);
void ConvS8AvxVnni_6x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                        int64_t unit_begin, int64_t unit_end);
void ConvS8Avx512Vnni_12x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                            int64_t unit_begin, int64_t unit_end);

// The kernel for pc.isa.
ConvKernelFn ConvKernelFor(CpuIsa isa);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_CONV_H_
