// Every `reprise` subcommand, one line each, in the order `reprise --help` lists them. Each
// add_X (defined in cmd_X.cpp) creates its subcommand on `app` and sets `run` when it is chosen.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace reprise::cli {

void add_info(CLI::App& app, Runner& run);
void add_run(CLI::App& app, Runner& run);
void add_chat(CLI::App& app, Runner& run);
void add_logits(CLI::App& app, Runner& run);
void add_tokenize(CLI::App& app, Runner& run);
void add_eval(CLI::App& app, Runner& run);
void add_compare(CLI::App& app, Runner& run);
void add_perplexity(CLI::App& app, Runner& run);
void add_scan(CLI::App& app, Runner& run);
void add_report(CLI::App& app, Runner& run);
void add_analyze(CLI::App& app, Runner& run);
void add_route(CLI::App& app, Runner& run);
void add_export(CLI::App& app, Runner& run);
void add_serve(CLI::App& app, Runner& run);
void add_bench(CLI::App& app, Runner& run);
void add_synth(CLI::App& app, Runner& run);

using AddCommand = void (*)(CLI::App& app, Runner& run);

inline constexpr AddCommand kCommands[] = {add_info,     add_run,    add_chat,    add_logits,
                                           add_tokenize, add_eval,   add_compare, add_perplexity,
                                           add_scan,     add_report, add_analyze, add_route,
                                           add_export,   add_serve,  add_bench,   add_synth};

}  // namespace reprise::cli
