// LOAD (incl. INP_IM2COL) and STORE execution; OUT narrowing.
#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "engine/common/status_macros.h"
#include "vta_backend/sim/sim_device.h"
#include "vta_backend/sim/sim_internal.h"

namespace vtaserve::vta::sim {

namespace {

// out[l] = low 8 bits of acc[l], l < lanes.
inline void NarrowAcc(const int32_t* acc, void* out, int lanes) {
  int l = 0;
#if defined(__x86_64__) || defined(__i386__)
  // SSE2: mask to 0..255, then two saturating packs that cannot saturate.
  const __m128i mask = _mm_set1_epi32(0xff);
  for (; l + 16 <= lanes; l += 16) {
    const __m128i* a = reinterpret_cast<const __m128i*>(acc + l);
    const __m128i a0 = _mm_and_si128(_mm_loadu_si128(a), mask);
    const __m128i a1 = _mm_and_si128(_mm_loadu_si128(a + 1), mask);
    const __m128i a2 = _mm_and_si128(_mm_loadu_si128(a + 2), mask);
    const __m128i a3 = _mm_and_si128(_mm_loadu_si128(a + 3), mask);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(static_cast<uint8_t*>(out) + l),
        _mm_packus_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3)));
  }
#endif
  for (; l < lanes; ++l)
    static_cast<uint8_t*>(out)[l] = static_cast<uint8_t>(acc[l]);
}

}  // namespace

void SimDevice::DetachOut(uint32_t elem) {
  if (!sram_.out_tracks[elem]) return;
  const int lanes = config_.AccLanes();
  NarrowAcc(&sram_.acc[size_t{elem} * lanes], &sram_.out[size_t{elem} * lanes],
            lanes);
  sram_.out_tracks[elem] = 0;
}

namespace {

// Geometry of a LOAD INP_IM2COL (isa::MemoryType::kInpIm2col).
struct Im2colGeometry {
  uint32_t kh, kw, channels, stride, blocks;
  uint64_t rows_in, row_span;  // source rows touched, bytes used per row
};

Im2colGeometry Im2colOf(const MemInsn& m, int block_in) {
  Im2colGeometry g;
  g.kh = m.y_pad_0 + 1;
  g.kw = m.y_pad_1 + 1;
  g.channels = m.x_pad_0 + 1;
  g.stride = m.x_pad_1 + 1;
  g.blocks = (g.kh * g.kw * g.channels + block_in - 1) / block_in;
  g.rows_in = (uint64_t{m.y_size} - 1) * g.stride + g.kh;
  g.row_span = ((uint64_t{m.x_size} - 1) * g.stride + g.kw) * g.channels;
  return g;
}

}  // namespace

absl::Status SimDevice::ValidateIm2colLoad(const MemInsn& m, size_t index,
                                           Op& op) {
  if (!config_.ext_im2col_load) {
    return Bad(index, "LOAD INP_IM2COL needs the ext_im2col_load extension");
  }
  if (m.x_size == 0) {
    op.nop = true;
    return absl::OkStatus();
  }
  if (m.y_size == 0) return Bad(index, "LOAD INP_IM2COL with y_size 0");
  const Im2colGeometry g = Im2colOf(m, config_.BlockIn());
  if (g.row_span > m.x_stride) {
    return Bad(index, "LOAD INP_IM2COL window row exceeds x_stride");
  }
  const uint64_t elems = uint64_t{g.blocks} * m.y_size * m.x_size;
  if (uint64_t{m.sram_base} + elems > config_.InpDepth()) {
    return Bad(index,
               absl::StrCat("LOAD INP_IM2COL SRAM range [", m.sram_base, ", ",
                            uint64_t{m.sram_base} + elems,
                            ") exceeds buffer depth ", config_.InpDepth()));
  }
  const uint64_t span = (g.rows_in - 1) * m.x_stride + g.row_span;
  op.dram = dram_.Translate(m.dram_base, span);
  if (op.dram == nullptr) {
    return Bad(index,
               absl::StrCat("DRAM range [0x", absl::Hex(m.dram_base), ", 0x",
                            absl::Hex(uint64_t{m.dram_base} + span),
                            ") is not inside one allocated buffer"));
  }
  // Each source row segment crosses the bus once; the gather writes one INP
  // element per cycle while it streams.
  op.bus_bytes = g.rows_in * g.row_span;
  op.gather_elems = elems;
  return absl::OkStatus();
}

void SimDevice::ExecIm2colLoad(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const Im2colGeometry g = Im2colOf(m, config_.BlockIn());
  const int lanes = config_.InpLanes();
  const uint32_t pixels = m.y_size * m.x_size;
  const uint32_t k_real = g.kh * g.kw * g.channels;
  std::vector<int8_t> v(size_t{g.blocks} * lanes, 0);
  int16_t* inp = sram_.inp.data();
  for (uint32_t r = 0; r < m.y_size; ++r) {
    for (uint32_t x = 0; x < m.x_size; ++x) {
      uint32_t k = 0;
      for (uint32_t a = 0; a < g.kh; ++a) {
        const uint8_t* row =
            op.dram + (uint64_t{r} * g.stride + a) * m.x_stride;
        const uint8_t* src = row + uint64_t{x} * g.stride * g.channels;
        const uint32_t n = g.kw * g.channels;
        for (uint32_t t = 0; t < n; ++t) v[k + t] = static_cast<int8_t>(src[t]);
        k += n;
      }
      std::fill(v.begin() + k_real, v.end(), 0);
      const uint32_t p = r * m.x_size + x;
      for (uint32_t b = 0; b < g.blocks; ++b) {
        int16_t* dst =
            inp + (size_t{m.sram_base} + size_t{b} * pixels + p) * lanes;
        for (int l = 0; l < lanes; ++l) dst[l] = v[size_t{b} * lanes + l];
      }
    }
  }
}

namespace {

// DRAM [o][k] -> SRAM [k/2][o][k%2]: one 16-bit (k even, k odd) byte pair
// per (k/2, o), i.e. a transpose of the bo x (bi/2) matrix of byte pairs.
void InterleaveWeights(const uint8_t* src, int bi, int bo, int8_t* dst) {
#if defined(__x86_64__) || defined(__i386__)
  if (bi % 16 == 0 && bo % 8 == 0) {
    // 8x8 tiles of byte pairs: 8 rows (outputs) of 8 pairs, transposed with
    // the usual three rounds of unpacks.
    for (int o0 = 0; o0 < bo; o0 += 8) {
      for (int kp0 = 0; kp0 < bi / 2; kp0 += 8) {
        __m128i r[8];
        for (int i = 0; i < 8; ++i) {
          r[i] = _mm_loadu_si128(
              reinterpret_cast<const __m128i*>(src + (o0 + i) * bi + 2 * kp0));
        }
        const __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]);
        const __m128i a1 = _mm_unpackhi_epi16(r[0], r[1]);
        const __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]);
        const __m128i a3 = _mm_unpackhi_epi16(r[2], r[3]);
        const __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]);
        const __m128i a5 = _mm_unpackhi_epi16(r[4], r[5]);
        const __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]);
        const __m128i a7 = _mm_unpackhi_epi16(r[6], r[7]);
        const __m128i b0 = _mm_unpacklo_epi32(a0, a2);
        const __m128i b1 = _mm_unpackhi_epi32(a0, a2);
        const __m128i b2 = _mm_unpacklo_epi32(a1, a3);
        const __m128i b3 = _mm_unpackhi_epi32(a1, a3);
        const __m128i b4 = _mm_unpacklo_epi32(a4, a6);
        const __m128i b5 = _mm_unpackhi_epi32(a4, a6);
        const __m128i b6 = _mm_unpacklo_epi32(a5, a7);
        const __m128i b7 = _mm_unpackhi_epi32(a5, a7);
        const __m128i t[8] = {
            _mm_unpacklo_epi64(b0, b4), _mm_unpackhi_epi64(b0, b4),
            _mm_unpacklo_epi64(b1, b5), _mm_unpackhi_epi64(b1, b5),
            _mm_unpacklo_epi64(b2, b6), _mm_unpackhi_epi64(b2, b6),
            _mm_unpacklo_epi64(b3, b7), _mm_unpackhi_epi64(b3, b7)};
        for (int i = 0; i < 8; ++i) {
          _mm_storeu_si128(
              reinterpret_cast<__m128i*>(dst + ((kp0 + i) * bo + o0) * 2),
              t[i]);
        }
      }
    }
    return;
  }
#endif
  for (int o = 0; o < bo; ++o) {
    const uint8_t* row = src + o * bi;
    for (int kp = 0; kp < bi / 2; ++kp) {
      std::memcpy(dst + (static_cast<size_t>(kp) * bo + o) * 2, row + 2 * kp,
                  2);
    }
  }
}

}  // namespace

absl::Status SimDevice::ExecLoad(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const uint32_t xt = m.x_pad_0 + m.x_size + m.x_pad_1;
  const uint32_t yt = m.y_pad_0 + m.y_size + m.y_pad_1;
  const size_t eb = isa::ElemBytes(config_, m.memory_type);
  // Row by row: fill(elem, n) for n padding elements from elem, and
  // copy(elem, src, n) for n data elements (consecutive in DRAM from src).
  auto walk = [&](auto&& fill, auto&& copy) {
    uint32_t elem = m.sram_base;
    for (uint32_t y = 0; y < yt; ++y, elem += xt) {
      if (y < m.y_pad_0 || y >= m.y_pad_0 + m.y_size) {
        fill(elem, xt);
        continue;
      }
      if (m.x_pad_0 > 0) fill(elem, m.x_pad_0);
      copy(elem + m.x_pad_0, op.dram + size_t{y - m.y_pad_0} * m.x_stride * eb,
           m.x_size);
      if (m.x_pad_1 > 0) fill(elem + m.x_pad_0 + m.x_size, m.x_pad_1);
    }
  };
  switch (m.memory_type) {
    case MemoryType::kInp: {
      const size_t lanes = config_.InpLanes();
      int16_t* inp = sram_.inp.data();
      walk([&](uint32_t e,
               uint32_t n) { std::fill_n(inp + e * lanes, n * lanes, 0); },
           [&](uint32_t e, const uint8_t* src, uint32_t n) {
             int16_t* dst = inp + e * lanes;
             const size_t count = n * lanes;
             for (size_t l = 0; l < count; ++l)
               dst[l] = static_cast<int8_t>(src[l]);
           });
      break;
    }
    case MemoryType::kWgt: {
      const int bi = config_.BlockIn(), bo = config_.BlockOut();
      const size_t lanes = config_.WgtLanes();
      int8_t* wgt = sram_.wgt.data();
      walk([&](uint32_t e,
               uint32_t n) { std::fill_n(wgt + e * lanes, n * lanes, 0); },
           [&](uint32_t e, const uint8_t* src, uint32_t n) {
             for (uint32_t i = 0; i < n; ++i) {
               InterleaveWeights(src + i * lanes, bi, bo,
                                 wgt + (e + i) * lanes);
             }
           });
      break;
    }
    case MemoryType::kAcc:
    case MemoryType::kAcc8Bit: {
      const size_t lanes = config_.AccLanes();
      int32_t* acc = sram_.acc.data();
      const bool narrow = m.memory_type == MemoryType::kAcc8Bit;
      walk(
          [&](uint32_t e, uint32_t n) {
            for (uint32_t i = 0; i < n; ++i) DetachOut(e + i);
            std::fill_n(acc + e * lanes, n * lanes, 0);
          },
          [&](uint32_t e, const uint8_t* src, uint32_t n) {
            for (uint32_t i = 0; i < n; ++i) DetachOut(e + i);
            int32_t* dst = acc + e * lanes;
            if (narrow) {
              for (size_t l = 0; l < n * lanes; ++l)
                dst[l] = static_cast<int8_t>(src[l]);
            } else {
              std::memcpy(dst, src, n * lanes * 4);  // little-endian host
            }
          });
      break;
    }
    case MemoryType::kUop: {
      for (uint32_t x = 0; x < m.x_size; ++x) {
        const uint8_t* s = op.dram + size_t{x} * 4;
        const uint32_t word = uint32_t{s[0]} | uint32_t{s[1]} << 8 |
                              uint32_t{s[2]} << 16 | uint32_t{s[3]} << 24;
        sram_.uops[m.sram_base + x] = codec_.DecodeUop(word);
      }
      break;
    }
    case MemoryType::kOut:
      return absl::InternalError("LOAD OUT passed validation");
    case MemoryType::kInpIm2col:
      ExecIm2colLoad(op);
      break;
  }
  return absl::OkStatus();
}

void SimDevice::ExecStore(const Op& op) {
  const MemInsn& m = std::get<MemInsn>(op.insn);
  const int lanes = config_.AccLanes();
  const size_t eb = config_.OutElemBytes();
  for (uint32_t r = 0; r < m.y_size; ++r) {
    for (uint32_t c = 0; c < m.x_size; ++c) {
      const uint32_t e = m.sram_base + r * m.x_size + c;
      uint8_t* dst = op.dram + (size_t{r} * m.x_stride + c) * eb;
      if (sram_.out_tracks[e]) {
        NarrowAcc(&sram_.acc[size_t{e} * lanes], dst, lanes);
      } else {
        std::memcpy(dst, &sram_.out[size_t{e} * lanes], lanes);
      }
    }
  }
}
}  // namespace vtaserve::vta::sim
