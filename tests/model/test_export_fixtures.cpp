// Export on the shared Llama / Qwen2 / Qwen3 fixtures (skipped when ../shared is absent):
//  - GGUF along a path, with the type kept, equals the source along the path bit for bit,
//    quantized files included;
//  - HF exports equal the source (bitwise for Qwen, whose Q/K rows need no reordering);
//  - HF -> GGUF of the llama-tiny HF fixture reproduces the llama-tiny GGUF tensors exactly;
//  - --type Q4_K_M / Q8_0 / Q6_K / Q4_K of the F32 fixtures reproduce llama-quantize's files byte
//    for byte (same type choices, same reference quantizers);
//  - GGUF -> HF -> GGUF gives the direct export's tensors byte for byte.
#include <gtest/gtest.h>
#include <cmath>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <map>

#include "engine/session.h"
#include "export/export.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "support/logits.h"
#include "support/test_support.h"

namespace reprise::exporter {
namespace {

using test::max_abs_diff;

namespace fs = std::filesystem;

const std::vector<int32_t> kPrompt = {318, 1, 256, 77, 402, 33, 500, 9, 44, 260, 301, 415};

fs::path fixture(const std::string& name) {
  return test::shared_dir() / "fixtures" / name;
}

std::vector<float> logits(const Model& m, const LayerPath& path) {
  return test::prompt_logits(m, path, kPrompt);
}

std::vector<float> plain_logits(const fs::path& model) {
  auto m = Model::load(model);
  return logits(*m, LayerPath::identity(m->hparams().n_layer));
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// name -> type, shape and bytes
std::map<std::string, std::string> tensor_bytes(const fs::path& file) {
  std::map<std::string, std::string> out;
  auto add = [&](const std::vector<TensorView>& views) {
    for (const auto& t : views)
      out[t.name] = std::string(info(t.type).name) + shape_string(t.shape) + "|" +
                    std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  };
  if (file.extension() == ".gguf")
    add(GgufFile::open(file)->tensors());
  else
    add(SafetensorsModel::open(file)->tensors());
  return out;
}

// Names whose bytes differ (or that only one side has), for short failure messages.
std::vector<std::string> differing(const std::map<std::string, std::string>& a,
                                   const std::map<std::string, std::string>& b) {
  std::vector<std::string> out;
  if (a.empty() || b.empty()) out.push_back("(no tensors at all)");
  for (const auto& [k, v] : a)
    if (!b.count(k) || b.at(k) != v) out.push_back(k);
  for (const auto& [k, v] : b)
    if (!a.count(k)) out.push_back(k);
  return out;
}

class ExportFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not available";
    const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("reprise-export-fx-" + std::to_string(::getpid()) + "-" + t->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void run(const Model& m, const std::string& spec, const fs::path& out, Format f,
           const std::string& type = "keep") {
    ExportOptions o;
    o.format = f;
    o.type = parse_type_spec(type);
    o.n_threads = 2;
    o.force = true;
    export_model(m, parse_layer_path(spec, m.hparams().n_layer), out, o);
  }

  fs::path dir_;
};

const char* kArchs[] = {"llama", "qwen2", "qwen3"};

TEST_F(ExportFixtures, GgufAlongPathIsBitwiseForEveryArchAndType) {
  for (const char* arch : kArchs)
    for (const char* type : {"f32", "bf16", "q8_0", "q4_k_m"}) {
      const std::string name = std::string(arch) + "-tiny-" + type;
      SCOPED_TRACE(name);
      auto src = Model::load(fixture(name + ".gguf"));
      for (const char* spec : {"repeat:1:3", "skip:1:2", "0,1,1,1,2,3"}) {
        const fs::path out = dir_ / (name + ".gguf");
        run(*src, spec, out, Format::Gguf);
        const auto want = logits(*src, parse_layer_path(spec, 4));
        const auto got = plain_logits(out);
        EXPECT_TRUE(bitwise_equal(got, want))
            << spec << ": max abs diff " << max_abs_diff(got, want);
      }
    }
}

TEST_F(ExportFixtures, HfAlongPathMatchesSource) {
  const test::ScopedF32Prefill f32;  // Q8_0 and its F32 copy must run the same arithmetic
  for (const char* arch : kArchs)
    for (const char* type : {"f32", "bf16", "q8_0"}) {
      const std::string name = std::string(arch) + "-tiny-" + type;
      SCOPED_TRACE(name);
      auto src = Model::load(fixture(name + ".gguf"));
      const fs::path out = dir_ / name;
      run(*src, "repeat:1:3", out, Format::Hf);
      const auto want = logits(*src, LayerPath::repeat(4, 1, 3));
      const auto got = plain_logits(out);
      if (std::string(arch) != "llama" && std::string(type) != "q8_0") {
        // No Q/K reordering and the same tensor bytes: the same computation.
        EXPECT_TRUE(bitwise_equal(got, want)) << "max abs diff " << max_abs_diff(got, want);
      } else {
        // Llama: q.k sums run in another order; Q8_0: F32 rows decoded from Q8_0 blocks run
        // through the F32 kernels.
        EXPECT_LE(max_abs_diff(got, want), 1e-4f);
      }
    }
}

TEST_F(ExportFixtures, HfFixtureToGgufIsTheGgufFixture) {
  // The HF fixtures hold un-permuted Q/K rows; exporting them to GGUF must permute them back.
  auto hf = Model::load(fixture("hf/llama-tiny-f32"));
  run(*hf, "", dir_ / "llama.gguf", Format::Gguf);
  EXPECT_EQ(
      differing(tensor_bytes(dir_ / "llama.gguf"), tensor_bytes(fixture("llama-tiny-f32.gguf"))),
      std::vector<std::string>{});
  // And the other way: the GGUF fixture exported to HF is the HF fixture.
  auto gguf = Model::load(fixture("llama-tiny-f32.gguf"));
  run(*gguf, "", dir_ / "hf", Format::Hf);
  EXPECT_EQ(differing(tensor_bytes(dir_ / "hf/model.safetensors"),
                      tensor_bytes(fixture("hf/llama-tiny-f32/model.safetensors"))),
            std::vector<std::string>{});
  // Along a path, the HF-made GGUF computes what the GGUF fixture computes, bit for bit.
  run(*hf, "repeat:1:3", dir_ / "rep.gguf", Format::Gguf);
  EXPECT_TRUE(
      bitwise_equal(plain_logits(dir_ / "rep.gguf"), logits(*gguf, LayerPath::repeat(4, 1, 3))));
}

TEST_F(ExportFixtures, QuantizedExportsAreLlamaQuantizesFiles) {
  for (const char* arch : kArchs) {
    auto src = Model::load(fixture(std::string(arch) + "-tiny-f32.gguf"));
    for (const auto& [type, file] :
         {std::pair{"Q4_K_M", "q4_k_m"}, {"Q8_0", "q8_0"}, {"Q6_K", "q6_k"}, {"Q4_K", "q4_k"}}) {
      const std::string name = std::string(arch) + "-tiny-" + file;
      SCOPED_TRACE(name);
      const fs::path out = dir_ / (name + ".gguf");
      run(*src, "", out, Format::Gguf, type);
      EXPECT_EQ(differing(tensor_bytes(out), tensor_bytes(fixture(name + ".gguf"))),
                std::vector<std::string>{});
    }
  }
}

TEST_F(ExportFixtures, GgufHfGgufRoundTrip) {
  for (const char* arch : kArchs) {
    SCOPED_TRACE(arch);
    auto src = Model::load(fixture(std::string(arch) + "-tiny-f32.gguf"));
    run(*src, "0,1,1,1,2,3", dir_ / "direct.gguf", Format::Gguf);
    run(*src, "0,1,1,1,2,3", dir_ / "hf", Format::Hf);
    auto mid = Model::load(dir_ / "hf");
    run(*mid, "", dir_ / "back.gguf", Format::Gguf);
    EXPECT_EQ(differing(tensor_bytes(dir_ / "back.gguf"), tensor_bytes(dir_ / "direct.gguf")),
              std::vector<std::string>{});
    // Tied heads stay tied all the way (Qwen fixtures), separate ones separate (Llama).
    EXPECT_EQ(GgufFile::open(dir_ / "back.gguf")->tensor("output.weight") != nullptr,
              std::string(arch) == "llama");
  }
}

}  // namespace
}  // namespace reprise::exporter
