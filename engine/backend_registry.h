// A name -> Backend table, filled once by main (or a test) and then read.
// Thread-safety: Register before sharing; Find is safe concurrently after.
#ifndef VTASERVE_ENGINE_BACKEND_REGISTRY_H_
#define VTASERVE_ENGINE_BACKEND_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/backend.h"

namespace vtaserve::engine {

class BackendRegistry {
 public:
  // Takes ownership. AlreadyExists if the name is taken.
  absl::Status Register(std::unique_ptr<Backend> backend);
  // nullptr if absent. The registry keeps ownership.
  Backend* Find(absl::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
};

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_BACKEND_REGISTRY_H_
