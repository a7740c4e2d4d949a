// The AVX-VNNI conv kernel built with an exact AVX2 emulation of vpdpbusd
// (tests/cpu_backend/avx_vnni_emulated_test.cc), so the sweep in
// conv_kernel_test.cc runs its tile driver on CPUs without AVX-VNNI. Needs
// AVX2.
#ifndef VTASERVE_TESTS_CPU_BACKEND_AVX_VNNI_EMULATED_H_
#define VTASERVE_TESTS_CPU_BACKEND_AVX_VNNI_EMULATED_H_

#include <cstdint>

#include "cpu_backend/kernels/conv.h"

namespace vtaserve::cpu {

// ConvS8AvxVnni_6x16's code with the emulated instruction.
void ConvS8AvxVnniEmulated_6x16(const PackedConv& pc, const uint8_t* buf,
                                int8_t* y, int64_t unit_begin,
                                int64_t unit_end);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_TESTS_CPU_BACKEND_AVX_VNNI_EMULATED_H_
