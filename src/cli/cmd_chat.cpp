// reprise chat: an interactive conversation along a layer path, switchable mid-conversation.
//
// On a terminal it reads lines with GNU readline (editing, history); otherwise it reads one user
// turn per line from stdin and prints each reply on its own line (or, with --jsonl, one JSON
// object per line, so replies containing newlines stay one record), so it can be scripted.
//
// Ctrl-C (SIGINT) during a reply stops the reply and goes back to the prompt, keeping the
// conversation, as llama.cpp does; Ctrl-C while waiting for input exits.
#include <fmt/format.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include "chat/chat_loop.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/chat_family.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct ChatOptions {
  ModelOptions model;
  std::string system;
  std::string chat_template;
  int n_predict = 256;
  SamplerOptions sampler{0.8f, 40, 0.95f, 42};
  bool jsonl = false;
};

// g_generating: a reply is being generated (set through ChatLoopOptions::on_generating).
// g_interrupted: SIGINT came during it (set by the handler, polled between tokens).
std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "touched from a signal handler");

extern "C" void on_sigint(int) {
  if (g_generating.load()) {
    g_interrupted.store(true);
    return;
  }
  // At the prompt: leave like an uncaught SIGINT would (readline has already restored the
  // terminal before passing the signal on).
  constexpr char kNewline = '\n';
  (void)!::write(STDOUT_FILENO, &kNewline, 1);
  std::_Exit(130);
}

void install_sigint_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
}

int run_chat(const ChatOptions& o) {
  const std::unique_ptr<Model> model = o.model.load();
  const bool own_template = o.chat_template.empty() || o.chat_template == "auto";
  const std::string router = route::auto_router_file(o.model.path);  // --path auto:FILE
  chat::Conversation conv(
      *model, router.empty() ? o.model.layer_path(*model) : LayerPath{}, router,
      {eval::resolve_chat_family(o.chat_template, model->tokenizer(), eval::UnknownTemplate::ChatML,
                                 "--chat-template", model->path()),
       o.system, own_template, o.model.session_options()});
  chat::ChatLoopOptions lo;
  lo.generate.max_tokens = o.n_predict;
  lo.generate.sampler = o.sampler;
  Sampler{o.sampler};  // bad sampling options fail now, not at the first reply
  lo.jsonl = o.jsonl;
  lo.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !o.jsonl;
  lo.parse_path = [](const std::string& spec, int n_layer) {
    return parse_layer_path(layer_path_spec(spec, n_layer), n_layer);
  };
  lo.cancelled = [] { return g_interrupted.load(); };
  lo.on_generating = [](bool on) {
    if (on) g_interrupted = false;
    g_generating = on;
  };
  const bool tty = lo.tty;
  chat::ChatLoop chat(conv, std::move(lo));
  install_sigint_handler();
  // Errors go to stderr, so stdout holds only replies; a script learns of them from the exit code.
  int failures = 0;
  auto handle = [&](const std::string& line) {
    try {
      return chat.handle(line);
    } catch (const Error& e) {
      ++failures;
      fmt::print(stderr, "reprise: error: {}\n", e.what());
      return true;
    }
  };
  if (tty) {
    fmt::print("{}\n{}\n\n", conv.describe(), chat::kCommandHelp);
    for (;;) {
      char* raw = readline("> ");
      if (!raw) break;
      std::string line(raw);
      std::free(raw);
      if (!line.empty()) add_history(line.c_str());
      if (!handle(line)) break;
    }
    return 0;
  }
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!handle(line)) break;
  }
  if (failures > 0) {
    fmt::print(stderr, "reprise: {} input line(s) failed\n", failures);
    return 1;
  }
  return 0;
}

}  // namespace

void add_chat(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ChatOptions>();
  auto* sub = app.add_subcommand("chat", "talk to a model; /path switches the layer path");
  o->model.add_to(*sub);
  sub->add_option("--system", o->system, "system prompt");
  sub->add_option(
      "--chat-template", o->chat_template,
      "chatml, llama3, llama2, mistral, gemma; auto (the default): the model's own, else chatml");
  sub->add_option("-n,--n-predict", o->n_predict, "largest reply in tokens")
      ->check(CLI::Range(1, 1 << 20));
  add_sampling_options(*sub, o->sampler);
  sub->add_option("-s,--seed", o->sampler.seed, "random seed")->capture_default_str();
  sub->add_flag("--jsonl", o->jsonl,
                "scripted use: print each reply as one JSON line {\"reply\", \"finish_reason\", "
                "\"tokens\"} (with --path auto:FILE also \"path\" and \"route\"; command "
                "answers as {\"info\"}), so replies with newlines stay one record");
  sub->callback([&run, o] { run = [o] { return run_chat(*o); }; });
}

}  // namespace reprise::cli
