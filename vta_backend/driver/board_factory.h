// Opens a board described by a BoardSpec into a VtaDevice (the driver's
// entry point for VtaOptions::device_factory).
#ifndef VTASERVE_VTA_BACKEND_DRIVER_BOARD_FACTORY_H_
#define VTASERVE_VTA_BACKEND_DRIVER_BOARD_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "vta_backend/config.h"
#include "vta_backend/driver/board_device.h"
#include "vta_backend/driver/board_spec.h"

namespace vtaserve::vta::driver {

// Maps the register window, opens the DMA memory and checks the FPGA
// manager. Unavailable naming the node that could not be opened (no board),
// FailedPrecondition when the FPGA is not programmed.
absl::StatusOr<std::unique_ptr<BoardDevice>> OpenBoard(const BoardSpec& spec,
                                                       const VtaConfig& config);

}  // namespace vtaserve::vta::driver

#endif  // VTASERVE_VTA_BACKEND_DRIVER_BOARD_FACTORY_H_
