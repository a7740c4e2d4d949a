// The reference backend: runs every op with reference_ops (the oracle).
// Thread-safe per the Backend contract.
#ifndef VTASERVE_ENGINE_REFERENCE_BACKEND_H_
#define VTASERVE_ENGINE_REFERENCE_BACKEND_H_

#include <memory>

#include "engine/backend.h"

namespace vtaserve::engine {

std::unique_ptr<Backend> CreateReferenceBackend();

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_REFERENCE_BACKEND_H_
