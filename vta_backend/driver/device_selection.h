// --vta-device selection for the server and the tools: "sim" (the built-in
// simulator) or a board preset (pynq, ultra96, zcu104, de10nano) whose
// addresses and nodes a JSON file may override (board_spec.h). Fills
// VtaOptions: the board's VtaConfig preset (unless a config was given) and
// a device_factory that opens the board.
#ifndef VTASERVE_VTA_BACKEND_DRIVER_DEVICE_SELECTION_H_
#define VTASERVE_VTA_BACKEND_DRIVER_DEVICE_SELECTION_H_

#include <string>

#include "absl/status/status.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {

inline constexpr char kVtaDeviceNames[] = "sim|pynq|ultra96|zcu104|de10nano";

// `device`: "sim" or a board; `board_json`: "" or an override file.
// `options.config` is replaced by the board's preset when it is empty or
// still the default. NotFound for an unknown device, the JSON file's error
// otherwise (InvalidArgument / NotFound); a board_json with "sim" is
// InvalidArgument. Nothing is opened until the backend is created.
absl::Status ApplyVtaDevice(const std::string& device,
                            const std::string& board_json, bool config_given,
                            VtaOptions& options);

}  // namespace vtaserve::vta

#endif  // VTASERVE_VTA_BACKEND_DRIVER_DEVICE_SELECTION_H_
