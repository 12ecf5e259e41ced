// Helpers shared by the test programs: locating data, running the CLI.
#pragma once

#include <filesystem>
#include <string>

namespace reprise::test {

// Root of the source tree (for models/, tests/data/).
std::filesystem::path source_dir();

// The team's shared fixtures directory, or empty if it is not present on this machine.
std::filesystem::path shared_dir();

// Skips the current test (GTEST_SKIP must be called from the test body) when false.
bool have_shared();

// Path to the bundled default model.
std::filesystem::path default_model();

// "-m '<default model>' -t 1": the CLI arguments that run the default model on one thread.
std::string default_model_arg();

// `name` inside a scratch directory made once per test process under /tmp and removed, with
// everything in it, when the process exits.
std::filesystem::path scratch(const std::string& name);

// The whole file as bytes ("" if it cannot be read).
std::string slurp(const std::filesystem::path& p);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the built `reprise` binary with `args` (a shell-quoted argument string).
CommandResult run_cli(const std::string& args, const std::string& stdin_text = "");
// Runs a shell command line (e.g. one that starts `reprise` under mpirun).
CommandResult run_shell(const std::string& command, const std::string& stdin_text = "");
// Path of the built `reprise` binary.
std::string binary();

}  // namespace reprise::test

// Expects `haystack` (anything std::string can be built from) to contain `needle`, and prints
// the whole haystack when it does not, so a wrong error message is visible in the failure.
#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)
