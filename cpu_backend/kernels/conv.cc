#include "cpu_backend/kernels/conv.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vtaserve::cpu {
namespace {

int RoundUp(int v, int m) { return (v + m - 1) / m * m; }

// Operand encodings of an int8 activation.
struct EncodeU8 {
  using T = uint8_t;
  static T Apply(int8_t v) { return static_cast<uint8_t>(v) ^ 0x80; }
};
struct EncodeS16 {
  using T = int16_t;
  static T Apply(int8_t v) { return v; }
};

// Always inlined, so each clone of ConvPackInput gets its own copy.
template <typename E>
inline __attribute__((always_inline)) void PackRows(
    const PackedConv& pc, const int8_t* x, const Strides& s, uint8_t* buf,
    int64_t row_begin, int64_t row_end) {
  using T = typename E::T;
  T* out = reinterpret_cast<T*>(buf);
  const T pad = E::Apply(static_cast<int8_t>(pc.in_zp));
  const int64_t row_elems = pc.wp * pc.cbuf;
  const bool contiguous = s.c == 1 && s.w == pc.cin && pc.cbuf == pc.cin;
  for (int64_t r = row_begin; r < row_end; ++r) {
    T* dst = out + r * row_elems;
    const int64_t ih = r - pc.pt;
    if (ih < 0 || ih >= pc.in_h) {
      std::fill(dst, dst + row_elems, pad);
      continue;
    }
    const int64_t left = int64_t{pc.pl} * pc.cbuf;
    const int64_t mid = pc.in_w * pc.cbuf;
    std::fill(dst, dst + left, pad);
    std::fill(dst + left + mid, dst + row_elems, pad);
    T* d = dst + left;
    const int8_t* src = x + ih * s.h;
    if (contiguous) {
      for (int64_t i = 0; i < mid; ++i) d[i] = E::Apply(src[i]);
      continue;
    }
    if (pc.cin == 3 && pc.cbuf == 3 && s.w == 1) {
      // RGB stems from NCHW: interleave three contiguous planes (a loop
      // GCC vectorises with shuffles).
      const int8_t* r = src;
      const int8_t* g = src + s.c;
      const int8_t* b = src + 2 * s.c;
      for (int64_t iw = 0; iw < pc.in_w; ++iw) {
        d[3 * iw] = E::Apply(r[iw]);
        d[3 * iw + 1] = E::Apply(g[iw]);
        d[3 * iw + 2] = E::Apply(b[iw]);
      }
      continue;
    }
    for (int64_t iw = 0; iw < pc.in_w; ++iw) {
      const int8_t* px = src + iw * s.w;
      T* dp = d + iw * pc.cbuf;
      for (int c = 0; c < pc.cin; ++c) dp[c] = E::Apply(px[c * s.c]);
      for (int c = pc.cin; c < pc.cbuf; ++c) dp[c] = pad;
    }
  }
}

// Exactness bound of the integer Winograd path (see conv.h).
constexpr int kWinogradMaxChannels = 3640;

// U = (2G) g (2G)^T per (output, input channel), as 16 int16 taps laid out
// like the direct AVX2 weights: [ocb][16][cbuf/2][16][2].
void PackWinogradWeights(const engine::ConvParams& p, PackedConv& pc) {
  static constexpr int kG2[4][3] = {
      {2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
  for (int oc = 0; oc < pc.cout; ++oc) {
    const int b = oc / kConvOcBlock, o = oc % kConvOcBlock;
    for (int ci = 0; ci < pc.cin; ++ci) {
      const int8_t* g = &p.weights[(size_t(oc) * pc.cin + ci) * 9];
      int t[4][3];
      for (int a = 0; a < 4; ++a) {
        for (int j = 0; j < 3; ++j) {
          t[a][j] =
              kG2[a][0] * g[j] + kG2[a][1] * g[3 + j] + kG2[a][2] * g[6 + j];
        }
      }
      for (int a = 0; a < 4; ++a) {
        for (int c = 0; c < 4; ++c) {
          const int u =
              t[a][0] * kG2[c][0] + t[a][1] * kG2[c][1] + t[a][2] * kG2[c][2];
          const int64_t blk = int64_t{b} * 16 + a * 4 + c;
          pc.w16[((blk * (pc.kred / 2) + ci / 2) * kConvOcBlock + o) * 2 +
                 ci % 2] = static_cast<int16_t>(u);
        }
      }
    }
  }
}

// Row pairs (conv.h): U for transformed row i, from the kernel rows r_kh
// (each over k = kw * cin + c), in kRowPairOrder's tap order:
// [ocb][10][kred/2][16][2].
void PackRowPairWeights(const engine::ConvParams& p, PackedConv& pc) {
  // U_i = sum_kh kCoef[i][kh] * r_kh.
  static constexpr int kCoef[kRowPairPoints][7] = {
      {0, 2, 0, 0, 0, 0, 0},  {0, 1, 0, 1, 0, 1, 0}, {0, 1, 0, -1, 0, 1, 0},
      {0, 0, 0, 0, 0, 2, 0},  {2, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 1, 0, 0},
      {1, 0, -1, 0, 1, 0, 0}, {0, 0, 0, 0, 2, 0, 0}, {0, 0, 0, 0, 0, 0, 2},
      {0, 0, 0, 0, 0, 0, 2}};
  for (int oc = 0; oc < pc.cout; ++oc) {
    const int b = oc / kConvOcBlock, o = oc % kConvOcBlock;
    for (int t = 0; t < kRowPairPoints; ++t) {
      const int i = kRowPairOrder[t];
      for (int k = 0; k < pc.kw * pc.cin; ++k) {
        const int kj = k / pc.cin, ci = k % pc.cin;
        int u = 0;
        for (int ki = 0; ki < 7; ++ki) {
          u +=
              kCoef[i][ki] *
              p.weights[((size_t(oc) * pc.cin + ci) * pc.kh + ki) * pc.kw + kj];
        }
        const int64_t blk = int64_t{b} * kRowPairPoints + t;
        pc.w16[((blk * (pc.kred / 2) + k / 2) * kConvOcBlock + o) * 2 + k % 2] =
            static_cast<int16_t>(u);
      }
    }
  }
}

}  // namespace

absl::StatusOr<PackedConv> PackConv(const engine::ConvParams& p, int64_t in_h,
                                    int64_t in_w, int64_t out_h, int64_t out_w,
                                    CpuIsa isa, bool allow_winograd) {
  if (isa == CpuIsa::kAuto) {
    return absl::InvalidArgumentError("PackConv needs a concrete isa");
  }
  PackedConv pc;
  pc.isa = isa;
  pc.cin = p.in_channels;
  pc.cout = p.out_channels;
  pc.kh = p.kernel_h;
  pc.kw = p.kernel_w;
  pc.sh = p.stride_h;
  pc.sw = p.stride_w;
  pc.dh = p.dilation_h;
  pc.dw = p.dilation_w;
  pc.pt = p.pad_top;
  pc.pl = p.pad_left;
  pc.in_h = in_h;
  pc.in_w = in_w;
  pc.out_h = out_h;
  pc.out_w = out_w;
  pc.hp = in_h + p.pad_top + p.pad_bottom;
  pc.wp = in_w + p.pad_left + p.pad_right;
  // The reduction step: int16 pairs for AVX2's vpmaddwd, byte quads for
  // the u8 x s8 paths.
  const bool wide = isa == CpuIsa::kAvx2;
  const int step = wide ? 2 : 4;
  pc.elem_size = wide ? 2 : 1;
  // Window reduction when it wastes fewer multiply slots than padding the
  // channels of every tap to the step.
  pc.window = p.dilation_w == 1 && p.kernel_w > 1 &&
              RoundUp(p.kernel_w * p.in_channels, step) <
                  p.kernel_w * RoundUp(p.in_channels, step);
  pc.cbuf = pc.window ? p.in_channels : RoundUp(p.in_channels, step);
  pc.taps = pc.window ? p.kernel_h : p.kernel_h * p.kernel_w;
  pc.kred = pc.window ? RoundUp(p.kernel_w * p.in_channels, step) : pc.cbuf;
  pc.ocb = (p.out_channels + kConvOcBlock - 1) / kConvOcBlock;
  pc.winograd = allow_winograd && wide && !pc.window && p.kernel_h == 3 &&
                p.kernel_w == 3 && p.stride_h == 1 && p.stride_w == 1 &&
                p.dilation_h == 1 && p.dilation_w == 1 && p.in_channels >= 8 &&
                p.in_channels <= kWinogradMaxChannels;
  pc.row_pairs = allow_winograd && wide && pc.window && p.kernel_h == 7 &&
                 p.stride_h == 2 && p.dilation_h == 1 &&
                 p.in_channels <= kRowPairMaxChannels;
  if (pc.winograd) {
    pc.tiles_h = (out_h + 1) / 2;
    pc.tiles_w = (out_w + 1) / 2;
    pc.taps = 16;
    pc.unit_items = pc.Tiles();
  } else if (pc.row_pairs) {
    pc.out_pairs = (out_h + 1) / 2;
    pc.taps = kRowPairPoints;
    pc.unit_items = pc.out_pairs * out_w;
    // The last pair reads padded rows up to 4 (out_pairs - 1) + 8: rows past
    // the padding are packed as padding too (only a dropped odd row uses
    // them).
    pc.hp = std::max(pc.hp, 4 * (pc.out_pairs - 1) + 9);
    // Zeroed slack past each row covers the window's over-read (<= 1).
    pc.v_row = (pc.wp * pc.cbuf + 8 + 15) / 16 * 16;
  } else {
    pc.unit_items = out_h * out_w;
  }
  pc.pixel_groups = (pc.unit_items + kConvUnitPixels - 1) / kConvUnitPixels;
  pc.in_zp = p.input_zero_point;
  pc.out_zp = p.output_zero_point;
  pc.lo = p.clamp_min - p.output_zero_point;
  pc.hi = p.clamp_max - p.output_zero_point;

  pc.tap_off.assign(pc.taps, 0);
  for (int t = 0; t < pc.taps && !pc.winograd; ++t) {
    if (pc.row_pairs) {
      pc.tap_off[t] = kRowPairOrder[t] * pc.v_row;
    } else if (pc.window) {
      pc.tap_off[t] = int64_t{t} * pc.dh * pc.wp * pc.cbuf;
    } else {
      const int ki = t / pc.kw, kj = t % pc.kw;
      pc.tap_off[t] =
          (int64_t{ki} * pc.dh * pc.wp + int64_t{kj} * pc.dw) * pc.cbuf;
    }
  }

  const int64_t padded_out = int64_t{pc.ocb} * kConvOcBlock;
  const int64_t wsize = padded_out * pc.taps * pc.kred;
  if (wide) {
    pc.w16.assign(wsize, 0);
  } else {
    pc.w8.assign(wsize, 0);
  }
  pc.pixel_major =
      wsize * pc.elem_size <= (pc.winograd ? kConvWinogradPixelMajorWeightBytes
                                           : kConvPixelMajorWeightBytes);
  pc.bias.assign(padded_out, 0);
  pc.rshift.assign(padded_out, 0);
  pc.lshift.assign(padded_out, 0);
  if (pc.winograd) PackWinogradWeights(p, pc);
  if (pc.row_pairs) PackRowPairWeights(p, pc);
  for (int oc = 0; oc < pc.cout; ++oc) {
    const int b = oc / kConvOcBlock, o = oc % kConvOcBlock;
    int64_t wsum = 0;
    if (pc.winograd || pc.row_pairs) {
      pc.bias[oc] = p.bias[oc];
      pc.rshift[oc] = std::max(p.shift[oc], 0);
      pc.lshift[oc] = std::max(-p.shift[oc], 0);
      continue;
    }
    for (int t = 0; t < pc.taps; ++t) {
      for (int k = 0; k < pc.kred; ++k) {
        int ki, kj, ci;
        if (pc.window) {
          if (k >= pc.kw * pc.cin) continue;
          ki = t;
          kj = k / pc.cin;
          ci = k % pc.cin;
        } else {
          if (k >= pc.cin) continue;
          ki = t / pc.kw;
          kj = t % pc.kw;
          ci = k;
        }
        const int8_t w =
            p.weights[((size_t(oc) * pc.cin + ci) * pc.kh + ki) * pc.kw + kj];
        wsum += w;
        const int64_t blk = int64_t{b} * pc.taps + t;
        if (wide) {
          pc.w16[((blk * (pc.kred / 2) + k / 2) * kConvOcBlock + o) * 2 +
                 k % 2] = w;
        } else {
          pc.w8[((blk * (pc.kred / 4) + k / 4) * kConvOcBlock + o) * 4 +
                k % 4] = w;
        }
      }
    }
    // u8 operands carry x + 128: subtract 128 * sum(w), wrapping like the
    // accumulator does.
    const uint32_t fold = wide ? 0u : static_cast<uint32_t>(wsum * 128);
    pc.bias[oc] =
        static_cast<int32_t>(static_cast<uint32_t>(p.bias[oc]) - fold);
    pc.rshift[oc] = std::max(p.shift[oc], 0);
    pc.lshift[oc] = std::max(-p.shift[oc], 0);
  }
  return pc;
}

VTASERVE_CPU_MULTIVERSION
void ConvPackInput(const PackedConv& pc, const int8_t* x, const Strides& s,
                   uint8_t* buf, int64_t row_begin, int64_t row_end) {
  if (pc.elem_size == 2) {
    PackRows<EncodeS16>(pc, x, s, buf, row_begin, row_end);
  } else {
    PackRows<EncodeU8>(pc, x, s, buf, row_begin, row_end);
  }
}

ConvUnit DecodeConvUnit(const PackedConv& pc, int64_t unit) {
  ConvUnit u;
  int64_t group;
  if (pc.pixel_major) {
    group = unit / pc.ocb;
    u.block = static_cast<int>(unit % pc.ocb);
  } else {
    group = unit % pc.pixel_groups;
    u.block = static_cast<int>(unit / pc.pixel_groups);
  }
  u.pix_begin = group * kConvUnitPixels;
  u.pix_end = std::min(u.pix_begin + kConvUnitPixels, pc.unit_items);
  return u;
}

ConvKernelFn ConvKernelFor(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx2:
      return &ConvS8Avx2_6x16;
    case CpuIsa::kAvxVnni:
      return &ConvS8AvxVnni_6x16;
    case CpuIsa::kAvx512Vnni:
      return &ConvS8Avx512Vnni_12x16;
    case CpuIsa::kAuto:
    case CpuIsa::kScalar:
      break;
  }
  return &ConvS8Ref;
}

}  // namespace vtaserve::cpu
