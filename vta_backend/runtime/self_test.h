// The device self-test: a small GEMM + ALU program with a known result
// (y = clamp(((W x) >> 4) + 3, -127, 127) for one BLOCK_OUT x BLOCK_IN
// matrix, fixed pseudo-random data), uploaded, run and checked on a device.
// Used by the VTA backend's Backend::SelfTest (readiness, taking a device
// back after faults).
#ifndef VTASERVE_VTA_BACKEND_RUNTIME_SELF_TEST_H_
#define VTASERVE_VTA_BACKEND_RUNTIME_SELF_TEST_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "vta_backend/config.h"
#include "vta_backend/device.h"

namespace vtaserve::vta {

// OK when the device computed the expected bytes; the device's own error
// (Unavailable, DeadlineExceeded, Internal...) when the run failed; Internal
// naming the first wrong element otherwise. Frees what it allocated.
absl::Status RunDeviceSelfTest(VtaDevice& device, const VtaConfig& config,
                               absl::Duration timeout);

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_RUNTIME_SELF_TEST_H_
