// Writes the seed corpora of the fuzz targets: fuzz_seeds OUT_DIR creates
// OUT_DIR/<target>/seed_N for onnx_importer, infer_request, model_config,
// npy, image and vta_sim, from the built-in zoo (small convolutions in
// every ONNX format), the tensors and requests the tests use, encoded PNG
// and JPEG images, and VTA programs of the shapes the simulator tests run.
// Checked-in seeds and past crashes live in tests/fuzz/corpus/<target>/.
// clang-format off
#include <stdio.h>  // before jpeglib.h, which needs FILE and size_t
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/npy.h"
#include "engine/tensor.h"
#include "proto/inference.pb.h"
#include "tests/fuzz/fuzz_models.h"
#include "tests/fuzz/vta_sim_fuzz.h"
#include "vta_backend/config.h"
#include "vta_backend/isa/isa.h"

namespace {

namespace fs = std::filesystem;
namespace fz = vtaserve::fuzz;
namespace isa = vtaserve::vta::isa;

class SeedWriter {
 public:
  SeedWriter(const fs::path& root, const std::string& target)
      : dir_(root / target) {
    fs::create_directories(dir_);
  }
  void Write(const std::string& bytes) {
    std::ofstream out(dir_ / absl::StrCat("seed_", n_++), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write a seed in %s\n", dir_.c_str());
      std::exit(1);
    }
  }
  int count() const { return n_; }

 private:
  fs::path dir_;
  int n_ = 0;
};

void OnnxSeeds(const fs::path& root) {
  SeedWriter w(root, "onnx_importer");
  for (const auto& m : fz::SmallConvModels()) w.Write(m.SerializeAsString());
}

void InferRequestSeeds(const fs::path& root) {
  SeedWriter w(root, "infer_request");
  for (const char* dtype : {"UINT8", "INT8", "FP32"}) {
    const int elem = std::string(dtype) == "FP32" ? 4 : 1;
    for (int batch : {1, 2}) {
      inference::ModelInferRequest r;
      r.set_model_name("fuzz_model");
      r.set_id("1");
      auto* in = r.add_inputs();
      in->set_name("input");
      in->set_datatype(dtype);
      for (int64_t d : {batch, 3, 8, 8}) in->add_shape(d);
      r.add_raw_input_contents(std::string(batch * 3 * 8 * 8 * elem, '\x01'));
      w.Write(r.SerializeAsString());
      // The same with typed contents and a named output.
      r.clear_raw_input_contents();
      for (int i = 0; i < batch * 3 * 8 * 8; ++i) {
        if (elem == 4) {
          in->mutable_contents()->add_fp32_contents(0.5f);
        } else if (std::string(dtype) == "UINT8") {
          in->mutable_contents()->add_uint_contents(i % 256);
        } else {
          in->mutable_contents()->add_int_contents(i % 256 - 128);
        }
      }
      r.add_outputs()->set_name("output");
      w.Write(r.SerializeAsString());
    }
  }
}

void ModelConfigSeeds(const fs::path& root) {
  SeedWriter w(root, "model_config");
  for (const char* text : {
           "",
           "name: \"fuzz_model\"\nplatform: \"vtaserve_onnx\"\n"
           "max_batch_size: 8\n",
           "placement: [\"vta\", \"cpu\"]\nfirst_conv: \"vta_im2col\"\n"
           "cpu_threads: 2\nmax_queue_size: 128\nconcurrent_executions: 2\n"
           "shift_group: 16\nvta_config: \"pynq\"\n",
           "input { name: \"input\" data_type: TYPE_UINT8 dims: [3, 224, 224] "
           "}\noutput { name: \"output\" data_type: TYPE_FP32 dims: [1000] }\n",
           "backend: \"vtaserve\"\nmax_batch_size: 4\n"
           "input [{ name: \"a\" dims: [-1, 3] }, { name: \"b\" }]\n",
       }) {
    w.Write(text);
  }
}

void NpySeeds(const fs::path& root) {
  SeedWriter w(root, "npy");
  for (auto dtype :
       {vtaserve::DataType::kInt8, vtaserve::DataType::kUInt8,
        vtaserve::DataType::kInt32, vtaserve::DataType::kFloat32}) {
    for (std::vector<int64_t> shape :
         {std::vector<int64_t>{1, 3, 4, 4}, std::vector<int64_t>{5},
          std::vector<int64_t>{}, std::vector<int64_t>{2, 0}}) {
      auto t = vtaserve::Tensor::Create(dtype, shape);
      if (!t.ok()) std::exit(1);
      for (size_t i = 0; i < t->byte_size(); ++i) t->bytes()[i] = i * 7;
      w.Write(vtaserve::SerializeNpy(*t));
    }
  }
  // Format 3.0 (utf-8 header, 4-byte header length).
  std::string header =
      "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string v3 = "\x93NUMPY\x03";
  v3 += '\0';
  const uint32_t len = header.size();
  v3.append(reinterpret_cast<const char*>(&len), 4);
  w.Write(v3 + header + "abcdef");
}

std::vector<uint8_t> Pixels(int width, int height) {
  std::vector<uint8_t> p(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 37);
  return p;
}

std::string Png(int width, int height, uint32_t format) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = format;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = i * 37;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0,
                                 nullptr)) {
    std::exit(1);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels.data(), 0,
                                 nullptr)) {
    std::exit(1);
  }
  out.resize(size);
  return out;
}

std::string Jpeg(int width, int height, bool progressive, bool gray) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = gray ? 1 : 3;
  cinfo.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 80, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> pixels = Pixels(width, height);
  while (cinfo.next_scanline < cinfo.image_height) {
    unsigned char* row =
        pixels.data() + static_cast<size_t>(cinfo.next_scanline) * width *
                            cinfo.input_components;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buf);
  return out;
}

void ImageSeeds(const fs::path& root) {
  SeedWriter w(root, "image");
  w.Write(Png(4, 3, PNG_FORMAT_RGB));
  w.Write(Png(5, 2, PNG_FORMAT_GRAY));
  w.Write(Png(3, 3, PNG_FORMAT_RGBA));
  w.Write(Png(2, 2, PNG_FORMAT_GA | PNG_FORMAT_FLAG_LINEAR));
  w.Write(Jpeg(8, 8, false, false));
  w.Write(Jpeg(17, 9, true, false));
  w.Write(Jpeg(9, 4, false, true));
}

// VTA programs in the layout of vta_sim_fuzz.h.
class VtaSeed {
 public:
  explicit VtaSeed(uint8_t flags) : flags_(flags) {
    auto base = vtaserve::vta::VtaConfigPreset("pynq");
    if (!base.ok()) std::exit(1);
    config_ = fz::SmallVtaConfig(flags, *base);
    auto codec = isa::IsaCodec::Create(config_);
    if (!codec.ok()) {
      std::fprintf(stderr, "seed config: %s\n",
                   codec.status().ToString().c_str());
      std::exit(1);
    }
    codec_.emplace(*codec);
  }
  uint32_t Elem(isa::MemoryType t, uint32_t byte_offset) const {
    return (fz::kVtaDataPhys + byte_offset) / isa::ElemBytes(config_, t);
  }
  isa::MemInsn Mem(isa::Opcode op, isa::MemoryType t, uint32_t sram,
                   uint32_t dram, uint32_t y, uint32_t x) const {
    isa::MemInsn m;
    m.opcode = op;
    m.memory_type = t;
    m.sram_base = sram;
    m.dram_base = dram;
    m.y_size = y;
    m.x_size = x;
    m.x_stride = x;
    return m;
  }
  void Add(const isa::Insn& insn) { insns_.push_back(insn); }
  void AddUop(isa::Uop u) { uops_.push_back(u); }
  std::string Bytes() const {
    std::string out;
    out += static_cast<char>(flags_);
    out += static_cast<char>(insns_.size());
    out += static_cast<char>(uops_.size());
    for (const isa::Insn& insn : insns_) {
      auto e = codec_->Encode(insn);
      if (!e.ok()) {
        std::fprintf(stderr, "seed: %s\n", e.status().ToString().c_str());
        std::exit(1);
      }
      uint8_t word[16];
      isa::StoreEncodedInsn(*e, word);
      out.append(reinterpret_cast<char*>(word), 16);
    }
    for (const isa::Uop& u : uops_) {
      auto e = codec_->EncodeUop(u);
      if (!e.ok()) {
        std::fprintf(stderr, "seed uop: %s\n", e.status().ToString().c_str());
        std::exit(1);
      }
      const uint32_t v = *e;
      out.append(reinterpret_cast<const char*>(&v), 4);
    }
    for (int i = 0; i < 4096; ++i) out += static_cast<char>(i * 13 + 5);
    return out;
  }
  const vtaserve::vta::VtaConfig& config() const { return config_; }

 private:
  uint8_t flags_;
  vtaserve::vta::VtaConfig config_;
  std::optional<isa::IsaCodec> codec_;
  std::vector<isa::Insn> insns_;
  std::vector<isa::Uop> uops_;
};

void VtaSeeds(const fs::path& root) {
  SeedWriter w(root, "vta_sim");
  using isa::MemoryType;
  using isa::Opcode;
  for (uint8_t flags : {0, 1, 3, 8}) {
    // LOAD UOP/ACC/INP/WGT, GEMM x3, ALU SHR, STORE, NOP, FINISH: the shape
    // of the simulator's GEMM test, with dependency tokens.
    VtaSeed s(flags);
    s.AddUop({0, 0, 0});
    s.AddUop({1, 1, 0});
    s.Add(s.Mem(Opcode::kLoad, MemoryType::kUop, 0, fz::kVtaUopPhys / 4, 1, 2));
    s.Add(s.Mem(Opcode::kLoad, MemoryType::kAcc, 0, s.Elem(MemoryType::kAcc, 0),
                1, 2));
    s.Add(s.Mem(Opcode::kLoad, MemoryType::kInp, 0,
                s.Elem(MemoryType::kInp, 1024), 1, 2));
    isa::MemInsn load_w = s.Mem(Opcode::kLoad, MemoryType::kWgt, 0,
                                s.Elem(MemoryType::kWgt, 2048), 1, 1);
    load_w.y_pad_0 = 1;
    load_w.dep.push_next = true;
    s.Add(load_w);
    isa::GemmInsn g;
    g.uop_bgn = 0;
    g.uop_end = 2;
    g.iter_out = 2;
    g.iter_in = 3;
    g.dst_factor_out = 2;
    g.src_factor_out = 1;
    g.dep.pop_prev = true;
    s.Add(g);
    isa::AluInsn a;
    a.uop_bgn = 0;
    a.uop_end = 2;
    a.iter_out = 1;
    a.iter_in = 2;
    a.dst_factor_in = 1;
    a.src_factor_in = 1;
    a.alu_opcode = (flags & 1) ? isa::AluOpcode::kMul : isa::AluOpcode::kShr;
    a.use_imm = true;
    a.imm = 3;
    a.dep.push_next = true;
    s.Add(a);
    isa::MemInsn st = s.Mem(Opcode::kStore, MemoryType::kOut, 0,
                            s.Elem(MemoryType::kOut, 8192), 2, 2);
    st.dep.pop_prev = st.dep.push_prev = true;
    s.Add(st);
    isa::MemInsn nop = s.Mem(Opcode::kLoad, MemoryType::kUop, 0, 0, 0, 0);
    nop.dep.pop_next = true;
    s.Add(nop);
    s.Add(isa::FinishInsn{});
    w.Write(s.Bytes());
  }
  {
    // ALU between two ACC ranges, MIN and MAX, no tokens.
    VtaSeed s(0);
    s.AddUop({0, 4, 0});
    s.Add(s.Mem(Opcode::kLoad, MemoryType::kUop, 0, fz::kVtaUopPhys / 4, 1, 1));
    s.Add(s.Mem(Opcode::kLoad, MemoryType::kAcc, 0, s.Elem(MemoryType::kAcc, 0),
                2, 4));
    for (auto op :
         {isa::AluOpcode::kMin, isa::AluOpcode::kMax, isa::AluOpcode::kAdd}) {
      isa::AluInsn a;
      a.uop_bgn = 0;
      a.uop_end = 1;
      a.iter_out = 2;
      a.iter_in = 2;
      a.dst_factor_out = 2;
      a.dst_factor_in = 1;
      a.src_factor_in = 1;
      a.alu_opcode = op;
      s.Add(a);
    }
    s.Add(isa::FinishInsn{});
    w.Write(s.Bytes());
  }
  {
    // Just FINISH, and an empty stream.
    VtaSeed s(0);
    s.Add(isa::FinishInsn{});
    w.Write(s.Bytes());
    w.Write(std::string("\0\0\0", 3));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  OnnxSeeds(root);
  InferRequestSeeds(root);
  ModelConfigSeeds(root);
  NpySeeds(root);
  ImageSeeds(root);
  VtaSeeds(root);
  return 0;
}
