// The built-in model zoo: real ONNX models generated in process, with no
// downloads. ResNet-18/34/50 (v1.5: the bottleneck strides on its 3x3) at any
// square input size, float or quantized (QDQ as ONNX Runtime's quantizer
// writes it, or QOperator with QLinearConv and com.microsoft ops), with
// deterministic pseudo-random weights (He-normal, data-dependent BatchNorm
// folded, nearest-prototype classifier: see BuildFloatResNet) and
// activation scales calibrated by a float forward pass over smooth
// pseudo-random images; plus single quantized conv layers for tests.
// Every model is checked with onnx::checker before it is returned.
// All functions are pure (same spec -> same bytes) and thread-safe.
#ifndef VTASERVE_ENGINE_ZOO_RESNET_GENERATOR_H_
#define VTASERVE_ENGINE_ZOO_RESNET_GENERATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/zoo/onnx_builder.h"
#include "onnx/onnx_pb.h"

namespace vtaserve::zoo {

enum class ModelFormat { kQdq, kQOperator, kFloat };

// "qdq", "qoperator", "float".
absl::string_view ModelFormatName(ModelFormat format);
// Inverse of ModelFormatName; InvalidArgument otherwise.
absl::StatusOr<ModelFormat> ParseModelFormat(absl::string_view name);

// Smallest and largest accepted ResNet input sizes.
inline constexpr int kMinResNetInputSize = 32;
inline constexpr int kMaxResNetInputSize = 1024;

struct ResNetSpec {
  int depth = 18;          // 18, 34 or 50
  int input_size = 224;    // square input, in [32, 1024]
  int num_classes = 1000;  // in [1, 100000]
  ModelFormat format = ModelFormat::kQdq;
  uint64_t seed = 1;
  // false: int8 symmetric activations (zero point 0 everywhere). ReLU can
  // then not be fused into the quantization, so it stays a node: Conv/Add ->
  // Relu -> QuantizeLinear in QDQ, and QLinearConv/QLinearAdd ->
  // DequantizeLinear -> Relu -> QuantizeLinear in QOperator (the shape ONNX
  // Runtime's quantizer writes with ActivationSymmetric). The tensor before
  // the Relu already has the ReLU output's scale, so both forms compute the
  // same integers.
  bool uint8_activations = true;
  // QDQ only (InvalidArgument with kQOperator): keep Relu nodes between
  // Conv/Add and QuantizeLinear even when the zero point makes them redundant.
  bool explicit_relu = false;
  bool softmax = false;        // append a float Softmax after the logits
  int calibration_images = 2;  // in [1, 64]
  // 8: int8 symmetric weights in [-127, 127]. 7: ONNX Runtime's
  // reduce_range, symmetric weights in [-63, 63] (scale = max|w| / 63), for
  // CPUs without VNNI whose u8 x s8 kernels (VPMADDUBSW) saturate int16 pair
  // sums with full-range weights. InvalidArgument otherwise.
  int weight_bits = 8;
};

// The whole network. Input "input" float [1,3,S,S] in normalized ImageNet
// space; output "logits" float [1,num_classes] (or "probabilities" when
// `softmax`). Node names follow torchvision: conv1, maxpool,
// layer1.0.conv1, layer1.0.downsample, layer1.0.add, avgpool, flatten, fc.
// InvalidArgument for a bad spec.
absl::StatusOr<onnx::ModelProto> GenerateResNet(const ResNetSpec& spec);

// One quantized conv, e.g. the 7x7/s2/p3 stem. Input "input" [1,C,H,W] and
// output "output" are quantized tensors (uint8, or int8 when !uint8_input)
// in kQOperator (QLinearConv) and kQdq (DQ -> Conv [-> Relu] -> Q); both
// float in kFloat (Conv [+ Relu]). Weights int8 symmetric (per output
// channel when per_channel), bias int32; the output scale and zero point are
// calibrated on a pseudo-random input (zero point qmin when relu).
struct ConvSpec {
  int in_channels = 3, out_channels = 64, input_h = 224, input_w = 224;
  int kernel = 7, stride = 2, pad = 3;
  ModelFormat format = ModelFormat::kQOperator;  // QLinearConv, or DQ->Conv->Q
  bool uint8_input = true;
  int input_zero_point = 128;  // int8 input when !uint8_input
  bool relu = false;
  bool per_channel = true;
  uint64_t seed = 1;
  float input_scale = 0.0208f;  // about 2.64 / 127: normalized ImageNet
  bool explicit_relu = false;   // kQdq with relu: keep the Relu node
  int weight_bits = 8;          // 8 or 7 (reduce_range), as in ResNetSpec
};
absl::StatusOr<onnx::ModelProto> GenerateConv(const ConvSpec& spec);

// Checks `model`, then serializes it to `path`. InvalidArgument if the check
// fails, Internal if the file cannot be written.
absl::Status WriteModel(const onnx::ModelProto& model, const std::string& path);

}  // namespace vtaserve::zoo

#endif  // VTASERVE_ENGINE_ZOO_RESNET_GENERATOR_H_
