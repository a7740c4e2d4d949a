#include "engine/backend_registry.h"

#include "absl/strings/str_cat.h"

namespace vtaserve::engine {

absl::Status BackendRegistry::Register(std::unique_ptr<Backend> backend) {
  if (Find(backend->Name()) != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("backend '", backend->Name(), "' already registered"));
  }
  backends_.push_back(std::move(backend));
  return absl::OkStatus();
}

Backend* BackendRegistry::Find(absl::string_view name) const {
  for (const auto& b : backends_) {
    if (b->Name() == name) return b.get();
  }
  return nullptr;
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& b : backends_) names.emplace_back(b->Name());
  return names;
}

}  // namespace vtaserve::engine
