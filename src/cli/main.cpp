// reprise: run transformer language models along any layer path.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"reprise: run llama-family models along any layer path", "reprise"};
  app.set_version_flag("--version", "reprise 0.1.0");
  app.require_subcommand(1);
  reprise::cli::Runner run;
  reprise::cli::add_info(app, run);
  reprise::cli::add_run(app, run);
  reprise::cli::add_logits(app, run);
  reprise::cli::add_tokenize(app, run);
  try {
    app.parse(argc, argv);
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
