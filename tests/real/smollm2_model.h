// Where the real tests find SmolLM2-135M-Instruct (models/, fetched by scripts/fetch-models.sh),
// and what they do without it: skip, except under CI=true, where a missing model is a failure.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/test_support.h"

namespace reprise::test {

inline std::filesystem::path smollm2_path() {
  return source_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

}  // namespace reprise::test

// GTEST_SKIP and FAIL return from the test body, so this has to be a macro.
#define REQUIRE_SMOLLM2()                                                                        \
  do {                                                                                           \
    if (!std::filesystem::exists(::reprise::test::smollm2_path())) {                             \
      if (::reprise::test::in_ci())                                                              \
        FAIL() << ::reprise::test::smollm2_path() << " is missing; run scripts/fetch-models.sh"; \
      GTEST_SKIP() << ::reprise::test::smollm2_path()                                            \
                   << " not present (scripts/fetch-models.sh fetches it)";                       \
    }                                                                                            \
  } while (0)
