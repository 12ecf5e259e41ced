// reprise: run transformer language models along any layer path.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include <csignal>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"
#include "util/version.h"

int main(int argc, char** argv) {
  // A file-size limit (or a full quota) should surface as a write error with a message, not
  // kill the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"reprise: run llama-family models along any layer path", "reprise"};
  app.set_version_flag("--version", fmt::format("reprise {}", reprise::version()));
  app.require_subcommand(1);
  reprise::cli::Runner run;
  for (auto add : reprise::cli::kCommands) add(app, run);
  reprise::cli::take_last_of_repeated_options(app);
  const std::vector<std::string> args = reprise::cli::normalize_llama_flags(argc, argv);
  std::vector<const char*> arg_ptrs;
  for (const std::string& a : args) arg_ptrs.push_back(a.c_str());
  // CLI11 reports a mistyped command as a missing one; name it instead.
  auto subs = app.get_subcommands([](const CLI::App*) { return true; });
  bool known = argc <= 1 || argv[1][0] == '-';
  std::string names;
  for (const auto* sub : subs) {
    known = known || sub->get_name() == argv[1];
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  if (!known) {
    fmt::print(stderr, "reprise: error: unknown command '{}' (commands: {})\n", argv[1], names);
    return 2;
  }
  try {
    app.parse(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "reprise: error: {}\n", e.what());
    return 2;
  }
  try {
    return run ? run() : 2;
  } catch (const reprise::Error& e) {
    fmt::print(stderr, "reprise: error: {}\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "reprise: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "reprise: internal error: {}\n", e.what());
    return 1;
  }
}
