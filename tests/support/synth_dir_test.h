// A TempDirTest that writes synthetic models (synth/) into its directory: the architecture tests
// (Gemma, MoE, Phi-3) build their tiny models this way.
#pragma once

#include <filesystem>
#include <memory>

#include "model/model.h"
#include "support/temp_dir_test.h"
#include "synth/synth.h"
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
};

}  // namespace reprise::test
