// Packing of NCHW activations to and from the blocked DRAM image.
#include "vta_backend/compiler/lowering_internal.h"

namespace vtaserve::vta::compiler {

void PackActivation(const ActivationLayout& layout, int lanes,
                    const int8_t* nchw, int8_t* image) {
  for (int ch = 0; ch < layout.channels; ++ch) {
    const int b = ch / lanes, lane = ch % lanes;
    for (int y = 0; y < layout.h; ++y) {
      const int8_t* src = nchw + (int64_t{ch} * layout.h + y) * layout.w;
      int8_t* dst = image + layout.ElemIndex(b, y, 0) * lanes + lane;
      for (int x = 0; x < layout.w; ++x) dst[int64_t{x} * lanes] = src[x];
    }
  }
}

void UnpackActivation(const ActivationLayout& layout, int lanes,
                      const int8_t* image, int8_t* nchw) {
  for (int ch = 0; ch < layout.channels; ++ch) {
    const int b = ch / lanes, lane = ch % lanes;
    for (int y = 0; y < layout.h; ++y) {
      int8_t* dst = nchw + (int64_t{ch} * layout.h + y) * layout.w;
      const int8_t* src = image + layout.ElemIndex(b, y, 0) * lanes + lane;
      for (int x = 0; x < layout.w; ++x) dst[x] = src[int64_t{x} * lanes];
    }
  }
}

}  // namespace vtaserve::vta::compiler
