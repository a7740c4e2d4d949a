#include "engine/model_manager.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/common/logging.h"
#include "engine/common/status_macros.h"

namespace vtaserve::engine {
namespace {

namespace fs = std::filesystem;

bool IsModelName(absl::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find('/') == absl::string_view::npos &&
         name.find('\\') == absl::string_view::npos && name[0] != '.';
}

// Checks a declared tensor against the model's value.
absl::Status CheckSpec(const ModelConfig& config, const TensorSpec& spec,
                       const Value& value, absl::string_view kind) {
  if (spec.dtype.has_value() && *spec.dtype != value.dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.source, ": ", kind, " '", spec.name, "' declares ",
                     DataTypeName(*spec.dtype), " but the model has ",
                     DataTypeName(value.dtype)));
  }
  if (spec.dims.empty()) return absl::OkStatus();
  std::vector<int64_t> model_dims = value.shape;
  if (config.max_batch_size > 0 && !model_dims.empty()) {
    model_dims.erase(model_dims.begin());
  }
  bool ok = spec.dims.size() == model_dims.size();
  for (size_t i = 0; ok && i < spec.dims.size(); ++i) {
    ok = spec.dims[i] == -1 || spec.dims[i] == model_dims[i];
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source, ": ", kind, " '", spec.name, "' declares dims ",
        ShapeToString(spec.dims), " but the model has ",
        ShapeToString(model_dims),
        config.max_batch_size > 0 ? " (without the batch dimension)" : ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseVersion(absl::string_view version) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(version, &v) || v < 0) {
    return absl::NotFoundError(
        absl::StrCat("version '", version, "' is not a version number"));
  }
  return v;
}

}  // namespace

absl::string_view ModelStateName(ModelState::State state) {
  switch (state) {
    case ModelState::State::kReady:
      return "READY";
    case ModelState::State::kLoading:
      return "LOADING";
    case ModelState::State::kUnavailable:
      return "UNAVAILABLE";
  }
  return "UNAVAILABLE";
}

absl::StatusOr<std::vector<int64_t>> ListVersions(
    const std::string& model_dir) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(model_dir, ec)) {
    if (!e.is_directory(ec)) continue;
    int64_t v = 0;
    const std::string name = e.path().filename().string();
    if (absl::SimpleAtoi(name, &v) && v >= 0 &&
        name.find_first_not_of("0123456789") == std::string::npos) {
      versions.push_back(v);
    }
  }
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("cannot list '", model_dir, "': ", ec.message()));
  }
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model folder '", model_dir,
                                            "' has no numeric version folder"));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

ModelManager::ModelManager(const ModelManagerOptions& options,
                           const BackendRegistry* registry, GraphLoader loader)
    : options_(options), registry_(registry), loader_(std::move(loader)) {}

ModelManager::~ModelManager() { Shutdown(absl::InfiniteFuture()); }

absl::StatusOr<std::shared_ptr<ModelManager::Model>> ModelManager::Build(
    const std::string& name) {
  const std::string dir = (fs::path(options_.repository) / name).string();
  VTASERVE_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> versions, ListVersions(dir));
  const int64_t version = versions.back();
  const std::string path =
      (fs::path(dir) / absl::StrCat(version) / "model.onnx").string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("'", path, "' does not exist"));
  }
  if (!loader_) return absl::FailedPreconditionError("no model loader");
  absl::StatusOr<ModelGraph> graph = loader_(path, config);
  if (!graph.ok()) return AnnotateStatus(graph.status(), path);
  VTASERVE_RETURN_IF_ERROR(AnnotateStatus(graph->Validate(), path));

  auto info = std::make_shared<ModelInfo>();
  info->name = name;
  info->version = version;
  info->model_path = path;
  for (ValueId v : graph->inputs) info->inputs.push_back(graph->value(v));
  for (ValueId v : graph->outputs) info->outputs.push_back(graph->value(v));
  if (config.max_batch_size > 0) {
    for (const Value& v : info->inputs) {
      if (v.shape.empty() || v.shape[0] != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(config.source, ": field 'max_batch_size': input '",
                         v.name, "' has shape ", ShapeToString(v.shape),
                         ", which has no batch dimension of 1 to extend"));
      }
    }
  }
  // Declared tensors must exist and agree.
  auto find = [](const std::vector<Value>& values, const std::string& n) {
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].name == n) return static_cast<int>(i);
    }
    return -1;
  };
  for (const TensorSpec& spec : config.inputs) {
    const int i = find(info->inputs, spec.name);
    if (i < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          config.source, ": field 'input': the model has no input '", spec.name,
          "'"));
    }
    VTASERVE_RETURN_IF_ERROR(CheckSpec(config, spec, info->inputs[i], "input"));
  }
  for (const TensorSpec& spec : config.outputs) {
    const int i = find(info->outputs, spec.name);
    if (i < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          config.source, ": field 'output': the model has no output '",
          spec.name, "'"));
    }
    VTASERVE_RETURN_IF_ERROR(
        CheckSpec(config, spec, info->outputs[i], "output"));
    info->default_outputs.push_back(i);
  }
  if (config.outputs.empty()) {
    for (size_t i = 0; i < info->outputs.size(); ++i) {
      info->default_outputs.push_back(static_cast<int>(i));
    }
  }

  PlacementOptions placement;
  placement.preference = config.placement;
  info->faults = std::make_shared<DeviceFaults>(options_.device_faults);
  placement.faults = info->faults;
  placement.backend_options = config.ToBackendOptions();
  if (config.vta_config.empty() && !options_.default_vta_config.empty()) {
    placement.backend_options["vta_config"] = options_.default_vta_config;
  }
  if (config.cpu_threads == 0 && options_.default_cpu_threads > 0) {
    placement.backend_options["cpu_threads"] =
        absl::StrCat(options_.default_cpu_threads);
  }
  std::vector<std::unique_ptr<Executor>> executors;
  for (int i = 0; i < config.concurrent_executions; ++i) {
    absl::StatusOr<std::unique_ptr<Executor>> ex =
        Executor::Create(*graph, *registry_, placement);
    if (!ex.ok()) return AnnotateStatus(ex.status(), path);
    if (i == 0) {
      // Decide the first conv's placement once: the other instances take the
      // first one's choice instead of re-running the (measured, noisy) cost
      // model, so every instance computes with the same strategy.
      for (const NodePlacement& p : (*ex)->placements()) {
        if (p.cost_seconds < 0 && p.costs.empty()) continue;
        if (p.backend == "cpu") {
          placement.backend_options[kFirstConvOption] = "cpu";
        } else if (absl::StartsWith(p.strategy, "vta_")) {
          placement.backend_options[kFirstConvOption] = p.strategy;
        }
        VTASERVE_LOG(
            kInfo,
            absl::StrCat("model '", name, "': first conv '", p.node, "' on ",
                         p.backend, " (", p.strategy, "); costs: ",
                         p.costs.empty() ? "not estimated" : p.costs));
      }
    }
    executors.push_back(*std::move(ex));
  }
  const Executor& first = *executors.front();
  info->placements = first.placements();
  info->partitions = first.DescribePartitions();
  Backend* preferred = nullptr;
  for (const std::string& name : placement.preference) {
    if ((preferred = registry_->Find(name)) != nullptr) break;
  }
  for (size_t i = 0; i < info->placements.size(); ++i) {
    const NodePlacement& p = info->placements[i];
    info->strategies.push_back(p.strategy.empty() ? p.backend : p.strategy);
    info->fallback.push_back(
        preferred != nullptr && p.backend != preferred->Name() &&
        !preferred->Supports(first.graph(), first.graph().nodes[i]).ok());
  }
  info->config = std::move(config);

  SchedulerOptions sched;
  sched.max_queue_size = info->config.max_queue_size;
  VTASERVE_ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> scheduler,
                            Scheduler::Create(sched, std::move(executors)));
  auto model = std::make_shared<Model>();
  model->info = std::move(info);
  model->scheduler = std::move(scheduler);
  return model;
}

absl::Status ModelManager::LoadAll() {
  std::error_code ec;
  if (!fs::is_directory(options_.repository, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "model repository '", options_.repository, "' is not a directory"));
  }
  fs::directory_iterator entries(options_.repository, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("model repository '", options_.repository,
                     "' cannot be read: ", ec.message()));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& e : entries) {
    const std::string name = e.path().filename().string();
    if (e.is_directory(ec) && IsModelName(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> failures;
  for (const std::string& name : names) {
    absl::Status s = Load(name);
    if (!s.ok()) {
      failures.push_back(std::string(s.message()));
      VTASERVE_LOG(kError, absl::StrCat("model '", name, "': ", s.message()));
    }
  }
  if (!failures.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        failures.size(), " of ", names.size(),
        " models failed to load: ", absl::StrJoin(failures, "; ")));
  }
  return absl::OkStatus();
}

absl::Status ModelManager::Load(absl::string_view name_view) {
  const std::string name(name_view);
  if (!IsModelName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name, "' is not a model name"));
  }
  absl::MutexLock load_lock(&load_mu_);
  std::error_code ec;
  if (!fs::is_directory(fs::path(options_.repository) / name, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "no model '", name, "' in repository '", options_.repository, "'"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("shutting down");
    Entry& e = models_[name];
    e.state.name = name;
    if (e.model == nullptr) e.state.state = ModelState::State::kLoading;
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<Model>> built = Build(name);
  std::shared_ptr<Model> old;
  int64_t version = -1;
  {
    absl::MutexLock lock(&mu_);
    Entry& e = models_[name];
    if (!built.ok()) {
      e.failed = true;
      e.state.reason = std::string(built.status().message());
      e.state.state = e.model != nullptr ? ModelState::State::kReady
                                         : ModelState::State::kUnavailable;
      return built.status();
    }
    if (shutting_down_) return absl::UnavailableError("shutting down");
    old = std::move(e.model);
    e.model = *std::move(built);
    e.failed = false;
    version = e.model->info->version;
    e.state.version = version;
    e.state.state = ModelState::State::kReady;
    e.state.reason.clear();
  }
  VTASERVE_LOG(
      kInfo, absl::StrCat("loaded model '", name, "' version ", version, " in ",
                          absl::FormatDuration(absl::Now() - start)));
  // Requests accepted by the old version finish before it goes away.
  if (old != nullptr) old->scheduler->Shutdown(absl::InfiniteFuture());
  return absl::OkStatus();
}

absl::Status ModelManager::Unload(absl::string_view name) {
  absl::MutexLock load_lock(&load_mu_);
  std::shared_ptr<Model> old;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(std::string(name));
    if (it == models_.end() || it->second.model == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("model '", name, "' is not loaded"));
    }
    old = std::move(it->second.model);
    it->second.state.state = ModelState::State::kUnavailable;
    it->second.state.version = -1;
    it->second.state.reason = "unloaded";
    it->second.failed = false;
  }
  old->scheduler->Shutdown(absl::InfiniteFuture());
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ModelManager::Model>> ModelManager::FindModel(
    absl::string_view name, absl::string_view version) const {
  auto it = models_.find(std::string(name));
  if (it == models_.end() || it->second.model == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  }
  const std::shared_ptr<Model>& model = it->second.model;
  if (!version.empty()) {
    absl::StatusOr<int64_t> v = ParseVersion(version);
    if (!v.ok() || *v != model->info->version) {
      return absl::NotFoundError(absl::StrCat(
          "model '", name, "' has no version '", version,
          "' loaded (serving version ", model->info->version, ")"));
    }
  }
  return model;
}

absl::StatusOr<std::shared_ptr<const ModelInfo>> ModelManager::Find(
    absl::string_view name, absl::string_view version) const {
  absl::ReaderMutexLock lock(&mu_);
  VTASERVE_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                            FindModel(name, version));
  return model->info;
}

absl::Status ModelManager::Submit(absl::string_view name,
                                  absl::string_view version,
                                  absl::FunctionRef<absl::StatusOr<InferJob>(
                                      const std::shared_ptr<const ModelInfo>&)>
                                      make_job) {
  absl::ReaderMutexLock lock(&mu_);
  if (shutting_down_)
    return absl::UnavailableError("the server is shutting down");
  VTASERVE_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                            FindModel(name, version));
  VTASERVE_ASSIGN_OR_RETURN(InferJob job, make_job(model->info));
  return model->scheduler->Submit(std::move(job));
}

std::vector<ModelState> ModelManager::Index() const {
  std::map<std::string, ModelState> rows;
  std::error_code ec;
  for (const fs::directory_entry& e :
       fs::directory_iterator(options_.repository, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory(ec) && IsModelName(name)) {
      ModelState s;
      s.name = name;
      s.reason = "not loaded";
      rows[name] = s;
    }
  }
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, entry] : models_) rows[name] = entry.state;
  std::vector<ModelState> out;
  for (auto& [name, state] : rows) out.push_back(std::move(state));
  return out;
}

bool ModelManager::AllReady() const {
  absl::ReaderMutexLock lock(&mu_);
  if (shutting_down_) return false;
  for (const auto& [name, entry] : models_) {
    if (entry.failed && entry.model == nullptr) return false;
  }
  return true;
}

absl::StatusOr<
    std::vector<std::pair<std::shared_ptr<const ModelInfo>, SchedulerStats>>>
ModelManager::Stats(absl::string_view name, absl::string_view version) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::shared_ptr<const ModelInfo>, SchedulerStats>> out;
  if (!name.empty()) {
    VTASERVE_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                              FindModel(name, version));
    out.emplace_back(model->info, model->scheduler->stats());
    return out;
  }
  for (const auto& [n, entry] : models_) {
    if (entry.model != nullptr) {
      out.emplace_back(entry.model->info, entry.model->scheduler->stats());
    }
  }
  return out;
}

int ModelManager::InFlight() const {
  absl::ReaderMutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, entry] : models_) {
    if (entry.model != nullptr) n += entry.model->scheduler->InFlight();
  }
  return n;
}

void ModelManager::Shutdown(absl::Time deadline) {
  std::vector<std::shared_ptr<Model>> models;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [name, entry] : models_) {
      if (entry.model != nullptr) models.push_back(entry.model);
    }
  }
  for (const auto& m : models) m->scheduler->Shutdown(deadline);
}

}  // namespace vtaserve::engine
