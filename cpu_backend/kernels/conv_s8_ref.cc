// ConvS8Ref: the portable path. It runs the exact data flow of the VNNI
// paths (u8 operands, [16][4] weight groups, folded bias, wrapping int32
// accumulation) in plain C++, so it also checks their packing on machines
// without VNNI.
#include <algorithm>
#include <cstring>

#include "cpu_backend/kernels/conv.h"

namespace vtaserve::cpu {

void ConvS8Ref(const PackedConv& pc, const uint8_t* buf, int8_t* y,
               int64_t unit_begin, int64_t unit_end) {
  const int64_t kgroups = pc.kred / 4;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const ConvUnit cu = DecodeConvUnit(pc, u);
    const int b = cu.block;
    const int nc = std::min(kConvOcBlock, pc.cout - b * kConvOcBlock);
    const int8_t* wblk =
        pc.w8.data() + int64_t{b} * pc.taps * pc.kred * kConvOcBlock;
    for (int64_t pix = cu.pix_begin; pix < cu.pix_end; ++pix) {
      const int64_t oh = pix / pc.out_w, ow = pix % pc.out_w;
      const uint8_t* px = buf + (oh * pc.sh * pc.wp + ow * pc.sw) * pc.cbuf;
      uint32_t acc[kConvOcBlock];
      for (int o = 0; o < kConvOcBlock; ++o) {
        acc[o] = static_cast<uint32_t>(pc.bias[b * kConvOcBlock + o]);
      }
      const int8_t* w = wblk;
      for (int t = 0; t < pc.taps; ++t) {
        const uint8_t* ip = px + pc.tap_off[t];
        for (int64_t g = 0; g < kgroups; ++g, w += 4 * kConvOcBlock) {
          const uint8_t* x4 = ip + g * 4;
          for (int o = 0; o < kConvOcBlock; ++o) {
            int32_t dot = 0;
            for (int j = 0; j < 4; ++j) dot += int32_t{x4[j]} * w[o * 4 + j];
            acc[o] += static_cast<uint32_t>(dot);
          }
        }
      }
      int8_t* out = y + pix * pc.cout + b * kConvOcBlock;
      for (int o = 0; o < nc; ++o) {
        const int c = b * kConvOcBlock + o;
        int32_t v = static_cast<int32_t>(acc[o]);
        v = v >> pc.rshift[c];
        v = static_cast<int32_t>(static_cast<uint32_t>(v) << pc.lshift[c]);
        v = std::clamp(v, pc.lo, pc.hi) + pc.out_zp;
        out[o] = static_cast<int8_t>(v);
      }
    }
  }
}

}  // namespace vtaserve::cpu
