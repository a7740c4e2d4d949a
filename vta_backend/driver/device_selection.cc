#include "vta_backend/driver/device_selection.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "vta_backend/driver/board_factory.h"
#include "vta_backend/driver/board_spec.h"

namespace vtaserve::vta {

absl::Status ApplyVtaDevice(const std::string& device,
                            const std::string& board_json, bool config_given,
                            VtaOptions& options) {
  if (device.empty() || device == "sim") {
    if (!board_json.empty()) {
      return absl::InvalidArgumentError(
          "--vta-board-json needs a board --vta-device, not sim");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<driver::BoardSpec> spec = driver::BoardPreset(device);
  if (!spec.ok()) {
    return absl::NotFoundError(absl::StrCat("unknown --vta-device \"", device,
                                            "\" (", kVtaDeviceNames, ")"));
  }
  if (!board_json.empty()) {
    if (absl::Status s = driver::ApplyBoardJsonFile(board_json, *spec);
        !s.ok()) {
      return s;
    }
  }
  if (!config_given) options.config = spec->vta_preset;
  options.device_factory = [spec = *spec](const VtaConfig& config)
      -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
    absl::StatusOr<std::unique_ptr<driver::BoardDevice>> dev =
        driver::OpenBoard(spec, config);
    if (!dev.ok()) {
      return absl::Status(
          dev.status().code(),
          absl::StrCat("VTA board ", spec.name, ": ", dev.status().message()));
    }
    return std::shared_ptr<VtaDevice>(*std::move(dev));
  };
  return absl::OkStatus();
}

}  // namespace vtaserve::vta
