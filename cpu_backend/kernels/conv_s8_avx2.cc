// ConvS8Avx2_6x16: 6 output pixels x 16 output channels per tile on AVX2.
// Operands are int16 (activations sign-extended by ConvPackInput, weights at
// PackConv) and vpmaddwd sums pairs into int32, so nothing saturates (the
// vpmaddubsw route could). Compiled for AVX2 by target pragma only: the rest
// of the binary stays portable and this is called only after CPUID agrees.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu_backend/kernels/conv.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2")
// Compiled for the target above (see the headers).
#include "cpu_backend/kernels/conv_block_avx.h"
#include "cpu_backend/kernels/conv_tiles.h"

namespace vtaserve::cpu {
namespace {

constexpr int kMr = 6;

using BlockArgs = conv_avx::BlockArgs<int16_t>;
using conv_avx::Store16;

// acc += the reduction of NW pixels (each with its own window start in
// `in`, so a tile may span output rows) x 16 channels over a.taps taps of
// a.kred int16 pairs, from weights w.
template <int NW>
inline __attribute__((always_inline)) void AccumulateAvx2(
    const BlockArgs& a, const int16_t* const* in, const int16_t* w,
    __m256i* acc0, __m256i* acc1) {
  for (int t = 0; t < a.taps; ++t) {
    const int64_t off = a.tap_off[t];
    const int16_t* ip[NW];
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) ip[p] = in[p] + off;
    for (int k = 0; k < a.kred; k += 2, w += 32) {
      const __m256i w0 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
#pragma GCC unroll 16
      for (int p = 0; p < NW; ++p) {
        int32_t pair;
        std::memcpy(&pair, ip[p] + k, sizeof(pair));
        const __m256i x = _mm256_set1_epi32(pair);
        acc0[p] = _mm256_add_epi32(acc0[p], _mm256_madd_epi16(x, w0));
        acc1[p] = _mm256_add_epi32(acc1[p], _mm256_madd_epi16(x, w1));
      }
    }
  }
}

// NW pixels x 16 channels of the direct scheme.
template <int NW>
inline __attribute__((always_inline)) void TileAvx2(const BlockArgs& a,
                                                    const int16_t* const* in,
                                                    int8_t* out) {
  __m256i acc0[NW], acc1[NW];
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) {
    acc0[p] = a.bias0;
    acc1[p] = a.bias1;
  }
  AccumulateAvx2<NW>(a, in, a.w, acc0, acc1);
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p)
    Store16(a, acc0[p], acc1[p], out + p * a.out_stride);
}

// Winograd: NW tiles from t0 x 16 channels. Each of the 16 transformed
// taps is its own reduction over the channels (M = sum_c U * V); then
// Y = A^T M A per tile, >> 2, + bias, requantized into the tile's (up to)
// 2x2 output pixels.
template <int NW>
inline __attribute__((always_inline)) void WinogradTileAvx2(
    const BlockArgs& a, const PackedConv& pc, const int16_t* v, int64_t t0,
    int8_t* y) {
  alignas(32) int32_t m[16][NW][kConvOcBlock];
  const int64_t tiles = pc.Tiles();
  for (int xi = 0; xi < 16; ++xi) {
    __m256i acc0[NW], acc1[NW];
    const int16_t* in[NW];
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) {
      acc0[p] = _mm256_setzero_si256();
      acc1[p] = _mm256_setzero_si256();
      in[p] = v + (xi * tiles + t0 + p) * pc.cbuf;
    }
    AccumulateAvx2<NW>(a, in, a.w + int64_t{xi} * pc.cbuf * kConvOcBlock, acc0,
                       acc1);
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][p]), acc0[p]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][p] + 8), acc1[p]);
    }
  }
  for (int p = 0; p < NW; ++p) {
    const int64_t t = t0 + p;
    const int64_t oh = (t / pc.tiles_w) * 2, ow = (t % pc.tiles_w) * 2;
    __m256i out[2][2][2];  // [r][s][half]
    for (int h = 0; h < 2; ++h) {
      __m256i mv[16];
#pragma GCC unroll 16
      for (int xi = 0; xi < 16; ++xi) {
        mv[xi] = _mm256_load_si256(
            reinterpret_cast<const __m256i*>(m[xi][p] + 8 * h));
      }
      __m256i tr[2][4];  // A^T M
#pragma GCC unroll 4
      for (int b = 0; b < 4; ++b) {
        tr[0][b] =
            _mm256_add_epi32(_mm256_add_epi32(mv[b], mv[4 + b]), mv[8 + b]);
        tr[1][b] = _mm256_sub_epi32(_mm256_sub_epi32(mv[4 + b], mv[8 + b]),
                                    mv[12 + b]);
      }
      const __m256i bias = h == 0 ? a.bias0 : a.bias1;
      for (int r = 0; r < 2; ++r) {
        const __m256i y0 =
            _mm256_add_epi32(_mm256_add_epi32(tr[r][0], tr[r][1]), tr[r][2]);
        const __m256i y1 =
            _mm256_sub_epi32(_mm256_sub_epi32(tr[r][1], tr[r][2]), tr[r][3]);
        // 4 * sum exactly (see conv.h): >> 2 is exact, then the bias wraps
        // like the direct accumulator.
        out[r][0][h] = _mm256_add_epi32(_mm256_srai_epi32(y0, 2), bias);
        out[r][1][h] = _mm256_add_epi32(_mm256_srai_epi32(y1, 2), bias);
      }
    }
    for (int r = 0; r < 2; ++r) {
      if (oh + r >= pc.out_h) break;
      for (int s = 0; s < 2; ++s) {
        if (ow + s >= pc.out_w) break;
        Store16(a, out[r][s][0], out[r][s][1],
                y + ((oh + r) * pc.out_w + ow + s) * a.out_stride);
      }
    }
  }
}

// Row pairs (conv.h): NW pixel pairs x 16 channels. in[p] is pair p's
// window start in transformed row 0 of its output-row pair; out_px[p] its
// output pixel in row 2q (the pixel below it is out_w further on) and
// lower[p] whether row 2q + 1 exists.
template <int NW>
inline __attribute__((always_inline)) void RowPairTileAvx2(
    const BlockArgs& a, const PackedConv& pc, const int16_t* const* in,
    const int64_t* out_px, const bool* lower, int8_t* y) {
  alignas(32) int32_t m[kRowPairGroups][NW][kConvOcBlock];
  BlockArgs g = a;
  int first = 0;
  for (int grp = 0; grp < kRowPairGroups; ++grp) {
    g.tap_off = a.tap_off + first;
    g.taps = kRowPairGroupEnd[grp] - first;
    __m256i acc0[NW], acc1[NW];
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) {
      acc0[p] = _mm256_setzero_si256();
      acc1[p] = _mm256_setzero_si256();
    }
    AccumulateAvx2<NW>(g, in, a.w + int64_t{first} * a.kred * kConvOcBlock,
                       acc0, acc1);
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[grp][p]), acc0[p]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[grp][p] + 8), acc1[p]);
    }
    first = kRowPairGroupEnd[grp];
  }
  for (int p = 0; p < NW; ++p) {
    __m256i out[2][2];  // [row][half]
    for (int h = 0; h < 2; ++h) {
      auto ld = [&](int grp) {
        return _mm256_load_si256(
            reinterpret_cast<const __m256i*>(m[grp][p] + 8 * h));
      };
      const __m256i m0 = ld(0), m1 = ld(1), m2 = ld(2), m3 = ld(3), m4 = ld(4);
      // 2 y(2q) = G0 + G1 + G2, 2 y(2q+1) = G1 - G2 - G3 + G4: exact >> 1,
      // then the bias wraps like the direct accumulator.
      const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
      const __m256i y1 =
          _mm256_add_epi32(_mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3), m4);
      const __m256i bias = h == 0 ? a.bias0 : a.bias1;
      out[0][h] = _mm256_add_epi32(_mm256_srai_epi32(y0, 1), bias);
      out[1][h] = _mm256_add_epi32(_mm256_srai_epi32(y1, 1), bias);
    }
    Store16(a, out[0][0], out[0][1], y + out_px[p] * a.out_stride);
    if (lower[p]) {
      Store16(a, out[1][0], out[1][1],
              y + (out_px[p] + pc.out_w) * a.out_stride);
    }
  }
}

// Runs pixel pairs [pix_begin, pix_end) of block `a` (row pairs).
void RowPairsRangeAvx2(const BlockArgs& a, const PackedConv& pc,
                       const int16_t* v, int64_t pix_begin, int64_t pix_end,
                       int8_t* ob) {
  const int64_t pair_stride = int64_t{kRowPairPoints} * pc.v_row;
  const int64_t pix_stride = int64_t{pc.sw} * pc.cbuf;
  int64_t q = pix_begin / pc.out_w, ow = pix_begin % pc.out_w;
  const int16_t* ptr[kMr];
  int64_t out_px[kMr];
  bool lower[kMr];
  ForEachTile<kMr>(
      pix_begin, pix_end, [&](auto n, int64_t) __attribute__((always_inline)) {
        // The next n pixel pairs, wrapping at row ends.
        for (int p = 0; p < n; ++p) {
          ptr[p] = v + q * pair_stride + ow * pix_stride;
          out_px[p] = 2 * q * pc.out_w + ow;
          lower[p] = 2 * q + 1 < pc.out_h;
          if (++ow == pc.out_w) {
            ow = 0;
            ++q;
          }
        }
        RowPairTileAvx2<decltype(n)::value>(a, pc, ptr, out_px, lower, ob);
      });
}

// 16 int16 lanes, or one: the operations of the Winograd input transform.
struct Lanes16 {
  using T = __m256i;
  static T Load(const int16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static void Store(int16_t* p, T x) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), x);
  }
  static T Add(T a, T b) { return _mm256_add_epi16(a, b); }
  static T Sub(T a, T b) { return _mm256_sub_epi16(a, b); }
};
struct Lanes1 {
  using T = int32_t;
  static T Load(const int16_t* p) { return *p; }
  static void Store(int16_t* p, T x) { *p = static_cast<int16_t>(x); }
  static T Add(T a, T b) { return a + b; }
  static T Sub(T a, T b) { return a - b; }
};

// V = B^T d B for the 4x4 window at d (rows `row` apart, pixels `px`
// apart) into the 16 transformed taps at o (`plane` apart). |d| <= 128
// gives |V| <= 512: no int16 overflow.
template <typename L>
inline __attribute__((always_inline)) void WinogradInputTile(
    const int16_t* d, int64_t row, int64_t px, int16_t* o, int64_t plane) {
  typename L::T w[4][4];
  for (int r = 0; r < 4; ++r) {
    const int16_t* dr = d + r * row;
    const auto x0 = L::Load(dr), x1 = L::Load(dr + px),
               x2 = L::Load(dr + 2 * px), x3 = L::Load(dr + 3 * px);
    w[r][0] = L::Sub(x0, x2);
    w[r][1] = L::Add(x1, x2);
    w[r][2] = L::Sub(x2, x1);
    w[r][3] = L::Sub(x1, x3);
  }
  for (int col = 0; col < 4; ++col) {
    L::Store(o + (0 * 4 + col) * plane, L::Sub(w[0][col], w[2][col]));
    L::Store(o + (1 * 4 + col) * plane, L::Add(w[1][col], w[2][col]));
    L::Store(o + (2 * 4 + col) * plane, L::Sub(w[2][col], w[1][col]));
    L::Store(o + (3 * 4 + col) * plane, L::Sub(w[1][col], w[3][col]));
  }
}

// The parts of BlockArgs every block of pc shares.
BlockArgs LayerArgs(const PackedConv& pc) {
  BlockArgs a = conv_avx::LayerArgs<int16_t>(pc);
  if (pc.winograd) {
    // Each transformed tap is one reduction over the channels.
    static constexpr int64_t kNoOffset = 0;
    a.tap_off = &kNoOffset;
    a.taps = 1;
  }
  return a;
}

// Points `a` at output-channel block `block` of pc.
void SetBlock(const PackedConv& pc, int block, BlockArgs& a) {
  conv_avx::SetBlock(pc, block, pc.w16.data(), a);
}

}  // namespace

void ConvS8Avx2_6x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                     int64_t unit_begin, int64_t unit_end) {
  const int16_t* in = reinterpret_cast<const int16_t*>(buf);
  BlockArgs a = LayerArgs(pc);
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const ConvUnit cu = DecodeConvUnit(pc, u);
    SetBlock(pc, cu.block, a);
    int8_t* ob = y + cu.block * kConvOcBlock;
    if (pc.row_pairs) {
      RowPairsRangeAvx2(a, pc, in, cu.pix_begin, cu.pix_end, ob);
      continue;
    }
    if (pc.winograd) {
      ForEachTile<kMr>(
          cu.pix_begin,
          cu.pix_end, [&](auto n, int64_t t) __attribute__((always_inline)) {
            WinogradTileAvx2<decltype(n)::value>(a, pc, in, t, ob);
          });
      continue;
    }
    PixelWindows<int16_t, kMr> win(pc, in, cu.pix_begin);
    ForEachTile<kMr>(
        cu.pix_begin,
        cu.pix_end, [&](auto n, int64_t pix) __attribute__((always_inline)) {
          const int16_t* ptr[kMr];
          win.Next<decltype(n)::value>(ptr);
          TileAvx2<decltype(n)::value>(a, ptr, ob + pix * pc.cout);
        });
  }
}

void ConvRowPairsInputAvx2(const PackedConv& pc, const uint8_t* buf, uint8_t* v,
                           int64_t pair_begin, int64_t pair_end) {
  const int16_t* in = reinterpret_cast<const int16_t*>(buf);
  int16_t* out = reinterpret_cast<int16_t*>(v);
  const int64_t row = pc.wp * pc.cbuf;  // elements of a padded row
  // Transformed row i = R(a) + sign * R(b) over padded rows R(j) = 4q + j
  // (b < 0: R(a) alone); see conv.h.
  static constexpr int kA[kRowPairPoints] = {1, 3, 5, 3, 0, 2, 4, 2, 6, 8};
  static constexpr int kB[kRowPairPoints] = {5, 5, 3, 7, 4, 4, 2, 6, -1, -1};
  static constexpr int kSign[kRowPairPoints] = {-1, 1,  -1, -1, -1,
                                                1,  -1, -1, 0,  0};
  for (int64_t q = pair_begin; q < pair_end; ++q) {
    const int16_t* r0 = in + 4 * q * row;
    for (int i = 0; i < kRowPairPoints; ++i) {
      int16_t* o = out + (q * kRowPairPoints + i) * pc.v_row;
      const int16_t* a = r0 + kA[i] * row;
      const int16_t* b = kB[i] >= 0 ? r0 + kB[i] * row : nullptr;
      int64_t e = 0;
      for (; e + 16 <= row; e += 16) {
        __m256i x = Lanes16::Load(a + e);
        if (b != nullptr) {
          const __m256i z = Lanes16::Load(b + e);
          x = kSign[i] > 0 ? Lanes16::Add(x, z) : Lanes16::Sub(x, z);
        }
        Lanes16::Store(o + e, x);
      }
      for (; e < row; ++e) {
        const int z = b == nullptr ? 0 : kSign[i] * b[e];
        o[e] = static_cast<int16_t>(a[e] + z);
      }
      std::fill(o + row, o + pc.v_row, int16_t{0});
    }
  }
}

void ConvRowPairsGroupsAvx2(const PackedConv& pc, const uint8_t* buf,
                            uint8_t* v, int8_t* y, int64_t pair_begin,
                            int64_t pair_end) {
  const int16_t* vin = reinterpret_cast<const int16_t*>(v);
  BlockArgs a = LayerArgs(pc);
  for (int64_t q = pair_begin; q < pair_end; ++q) {
    ConvRowPairsInputAvx2(pc, buf, v, q, q + 1);
    for (int b = 0; b < pc.ocb; ++b) {
      SetBlock(pc, b, a);
      RowPairsRangeAvx2(a, pc, vin, q * pc.out_w, (q + 1) * pc.out_w,
                        y + b * kConvOcBlock);
    }
  }
}

void ConvWinogradInputAvx2(const PackedConv& pc, const uint8_t* buf, uint8_t* v,
                           int64_t tile_begin, int64_t tile_end) {
  const int16_t* in = reinterpret_cast<const int16_t*>(buf);
  int16_t* out = reinterpret_cast<int16_t*>(v);
  const int64_t cbuf = pc.cbuf;
  const int64_t row = pc.wp * cbuf;
  const int64_t plane = pc.Tiles() * cbuf;  // between transformed taps
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int16_t* d0 =
        in + ((t / pc.tiles_w) * 2 * pc.wp + (t % pc.tiles_w) * 2) * cbuf;
    int16_t* o = out + t * cbuf;
    int64_t c = 0;
    for (; c + 16 <= cbuf; c += 16) {
      WinogradInputTile<Lanes16>(d0 + c, row, cbuf, o + c, plane);
    }
    for (; c < cbuf; ++c)
      WinogradInputTile<Lanes1>(d0 + c, row, cbuf, o + c, plane);
  }
}

void ConvWinogradGroupsAvx2(const PackedConv& pc, const uint8_t* buf,
                            uint8_t* v, int8_t* y, int64_t group_begin,
                            int64_t group_end) {
  for (int64_t g = group_begin; g < group_end; ++g) {
    const int64_t t0 = g * kConvUnitPixels;
    ConvWinogradInputAvx2(pc, buf, v, t0,
                          std::min(t0 + kConvUnitPixels, pc.Tiles()));
    for (int b = 0; b < pc.ocb; ++b) {
      const int64_t u =
          pc.pixel_major ? g * pc.ocb + b : b * pc.pixel_groups + g;
      ConvS8Avx2_6x16(pc, v, y, u, u + 1);
    }
  }
}

}  // namespace vtaserve::cpu

#pragma GCC pop_options
