// A tensor's bytes as a file writer (GGUF, safetensors) holds them until the file is written:
// a view, or a function that produces them only then (a tensor requantized for an export), so a
// model larger than memory is written one tensor at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "util/output_file.h"

namespace reprise {

struct TensorBytes {
  // Fills exactly the tensor's bytes; called once, while its file is written.
  using Fill = std::function<void(std::span<std::byte> out)>;

  std::span<const std::byte> data;  // view (into the writer's own copy or the caller's memory)
  Fill fill;                        // set instead of data for lazily produced tensors
  uint64_t nbytes = 0;

  // Writes the bytes to `out`; `scratch` holds a filled tensor and is reused across tensors.
  void write_to(OutputFile& out, std::vector<std::byte>& scratch) const {
    if (!fill) {
      out.write(data);
      return;
    }
    scratch.assign(nbytes, std::byte{0});
    fill(scratch);
    out.write(scratch);
  }
};

}  // namespace reprise
