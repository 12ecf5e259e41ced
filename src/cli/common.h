// Options and helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/layer_path.h"
#include "engine/session.h"
#include "model/model.h"

namespace reprise::cli {

// The subcommand that parsing selected; returns the process exit code.
using Runner = std::function<int()>;

// -m MODEL, --path SPEC, -t THREADS, --ctx N: every command that runs a model has them.
struct ModelOptions {
  std::string model;
  std::string path;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f32";

  void add_to(CLI::App& sub, bool with_path = true);
  std::unique_ptr<Model> load() const;
  LayerPath layer_path(const Model& m) const;
  SessionOptions session_options() const;
};

// Parses "1,2,3" into token ids; throws Error naming the bad token.
std::vector<int32_t> parse_token_list(const std::string& s);

// Tokenizes a prompt; throws Error if the model has no vocabulary.
std::vector<int32_t> tokenize_prompt(const Model& m, const std::string& prompt, bool add_bos,
                                     bool parse_special);

// Each cmd_*.cpp registers its subcommand with a static CommandRegistration, so adding a
// command touches no other file. `add` creates the subcommand and sets `run` when it is selected.
using AddCommand = void (*)(CLI::App& app, Runner& run);

struct CommandRegistration {
  CommandRegistration(int order, AddCommand add);
};

// Registered commands, in ascending `order` (the order `reprise --help` lists them).
std::vector<AddCommand> registered_commands();

}  // namespace reprise::cli
