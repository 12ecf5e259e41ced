#include "support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace reprise::test {

std::filesystem::path source_dir() {
  return REPRISE_SOURCE_DIR;
}

std::filesystem::path shared_dir() {
  std::filesystem::path p = REPRISE_SHARED_DIR;
  if (std::filesystem::exists(p / "golden")) return p;
  return {};
}

bool have_shared() {
  return !shared_dir().empty();
}

std::filesystem::path default_model() {
  return source_dir() / "models" / "stories260K.gguf";
}

std::string default_model_arg() {
  return "-m '" + default_model().string() + "' -t 1";
}

namespace {

// The test process's scratch directory, removed with everything in it when the process exits
// (each ctest case is its own process, so leaving it would leave one directory per test).
struct ScratchDir {
  std::filesystem::path path;
  pid_t owner = getpid();  // a forked child that exits normally must not remove it
  ScratchDir() {
    char tmpl[] = "/tmp/reprise-test-scratch-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("cannot make a scratch directory under /tmp");
    path = tmpl;
  }
  ~ScratchDir() {
    if (getpid() != owner) return;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

std::filesystem::path scratch(const std::string& name) {
  static const ScratchDir dir;
  return dir.path / name;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

CommandResult run_shell(const std::string& command, const std::string& stdin_text) {
  char dir_template[] = "/tmp/reprise-test-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  std::filesystem::path d = dir ? dir : "/tmp";
  {
    std::ofstream in(d / "stdin");
    in << stdin_text;
  }
  const std::string cmd = "( " + command + " ) <'" + (d / "stdin").string() + "' >'" +
                          (d / "stdout").string() + "' 2>'" + (d / "stderr").string() + "'";
  int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(d / "stdout");
  r.err = slurp(d / "stderr");
  std::filesystem::remove_all(d);
  return r;
}

std::string binary() {
  return REPRISE_BINARY;
}

CommandResult run_cli(const std::string& args, const std::string& stdin_text) {
  return run_shell("'" + binary() + "' " + args, stdin_text);
}

}  // namespace reprise::test
