// A TempDirTest that writes synthetic models (synth/) into its directory: the architecture tests
// (Gemma, MoE, Phi-3) build their tiny models this way.
#pragma once

#include <filesystem>
#include <memory>

#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/model.h"
#include "support/temp_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace reprise::test {

class SynthDirTest : public TempDirTest {
 protected:
  // An F32 model of shape `s` with seed 7 at dir_/NAME.gguf; its path.
  std::filesystem::path write(const synth::SynthShape& s) {
    const auto path = dir_ / (s.name + ".gguf");
    ThreadPool pool(1);
    synth::write_synth_model(s, *synth::parse_file_type("f32"), 7, path, true, pool);
    return path;
  }
  std::unique_ptr<Model> write_and_load(const synth::SynthShape& s) {
    return Model::load(write(s));
  }
  // The synth file of shape `s` with one metadata key set to `value`, at dir_/edited.gguf.
  std::filesystem::path with_key(const synth::SynthShape& s, const std::string& key,
                                 const GgufValue& value) {
    auto src = GgufFile::open(write(s));
    GgufWriter w;
    w.copy_metadata(*src);
    w.set(key, value);
    for (const TensorView& t : src->tensors()) w.add_tensor(t.name, t.type, t.shape, t.data);
    const auto out = dir_ / "edited.gguf";
    w.write(out, true);
    return out;
  }
  // The Error message loading `p` throws, or "" if it loads.
  static std::string load_error(const std::filesystem::path& p) {
    try {
      Model::load(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace reprise::test
