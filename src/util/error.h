// Error types thrown by every layer of reprise and caught at the CLI / request boundary.
#pragma once

#include <stdexcept>
#include <string>

namespace reprise {

// A problem with user input: a model file, a flag, a layer path, a request.
// The message is one line and names the offending file, field or argument.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model file that is malformed, truncated or hostile. The message starts with the file name.
class FormatError : public Error {
 public:
  FormatError(const std::string& file, const std::string& what) : Error(file + ": " + what) {}
};

}  // namespace reprise
