// The `reprise` Python module (pybind11): the C++ core itself, no second implementation.
// Errors surface as reprise.Error (a RuntimeError) with the CLI's one-line message; compute
// releases the GIL.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.h"
#include "util/error.h"
#include "util/version.h"

PYBIND11_MODULE(_reprise, m) {
  m.doc() = "reprise: run transformer LMs along arbitrary layer paths (C++ core)";
  // Error and its subclasses (FormatError) carry the message the CLI prints after
  // "reprise: error: ".
  // The one version number (CMake's project(VERSION), through util/version), not a copy.
  m.attr("__version__") = std::string(reprise::version());
  pybind11::register_exception<reprise::Error>(m, "Error", PyExc_RuntimeError);
  reprise::pyapi::bind_model(m);
  reprise::pyapi::bind_eval(m);
  reprise::pyapi::bind_store(m);
}
