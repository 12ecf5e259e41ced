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

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <iostream>

#include "cli/common.h"
#include "engine/generator.h"
#include "engine/sampler.h"
#include "model/chat_template.h"
#include "route/prefix_features.h"
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

// g_generating: a reply is being generated (set by the chat loop). g_interrupted: SIGINT came
// during it (set by the handler, polled between tokens).
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

const char* kHelp =
    "commands: /path SPEC (switch the layer path, or 'auto:ROUTER.json' to route each turn; the "
    "conversation is kept and re-read), "
    "/reset (forget the conversation), /stats, /help, /quit";

class Chat {
 public:
  explicit Chat(const ChatOptions& o)
      : o_(o),
        model_(o.model.load()),
        router_(load_router(route::auto_router_file(o.model.path))),
        session_(*model_, router_ ? router_path(0) : o.model.layer_path(*model_),
                 o.model.session_options()) {
    if (!model_->tokenizer())
      throw Error(fmt::format("{}: the model has no vocabulary; chat needs text", model_->path()));
    family_ = o.chat_template;
    if (family_.empty())
      family_ = detect_chat_template(model_->tokenizer()->vocab().chat_template).value_or("chatml");
    format_chat(family_, {}, false);  // an unknown --chat-template fails here, listing the names
    Sampler{o.sampler};               // bad sampling options fail now, not at the first reply
    const std::string& jinja = model_->tokenizer()->vocab().chat_template;
    if (!o.system.empty())
      messages_.push_back({"system", o.system});
    else if (o.chat_template.empty())  // the model's own template, with its default system turn
      if (auto sys = default_system_message(jinja)) messages_.push_back({"system", *sys});
  }

  std::string describe() const {
    return fmt::format("model {}, path {}, template {}", model_->name(),
                       router_
                           ? "auto:" + router_file_ + " (now " + session_.path().canonical() + ")"
                           : session_.path().canonical(),
                       family_);
  }

  // Handles one line of input; returns false to quit. Throws Error for a failed command.
  bool handle(const std::string& line, bool tty) {
    if (line == "/quit" || line == "/exit") return false;
    if (line == "/help") {
      say(kHelp);
    } else if (line == "/reset") {
      messages_.erase(std::remove_if(messages_.begin(), messages_.end(),
                                     [](auto& m) { return m.role != "system"; }),
                      messages_.end());
      say("conversation reset");
    } else if (line == "/path" || line.starts_with("/path ")) {
      const std::string spec = line.size() > 5 ? line.substr(6) : "";
      if (spec.find_first_not_of(" \t") == std::string::npos) {
        // No argument shows the path; switching back to all layers takes '/path all'.
        say(fmt::format("path {} (switch with /path SPEC; '/path all' for every layer)",
                        session_.path().canonical()));
      } else {
        const int n_layer = model_->hparams().n_layer;
        if (const std::string file = route::auto_router_file(spec); !file.empty()) {
          auto next = load_router(file);       // a bad file throws and keeps the old setting
          session_.set_prefix_cache(nullptr);  // the old router's cache goes with it
          router_ = std::move(next);
          session_.set_path(router_path(0));
          held_.clear();
          say(fmt::format("path auto: each turn routed by {}", file));
        } else {
          LayerPath path = parse_layer_path(layer_path_spec(spec, n_layer), n_layer);
          if (path.layers.empty()) throw Error(fmt::format("layer path '{}' runs no layers", spec));
          router_.reset();
          session_.set_prefix_cache(nullptr);
          session_.set_path(std::move(path));
          held_.clear();
          say(fmt::format("path set to {}", session_.path().canonical()));
        }
      }
    } else if (line == "/stats") {
      say(fmt::format("{}; {} turns; last reply {} tokens at {:.1f} t/s; {} tokens in context",
                      describe(), messages_.size(), last_.completion_tokens,
                      last_.completion_tokens / std::max(last_.decode_seconds, 1e-9),
                      session_.n_past()));
    } else if (!line.empty() && line[0] == '/') {
      throw Error(fmt::format("unknown command {}; {}", line, kHelp));
    } else if (!line.empty()) {
      reply(line, tty);
    }
    std::fflush(stdout);
    return true;
  }

 private:
  // --path auto:FILE: the router, checked against the model; nullptr for "".
  std::unique_ptr<route::PathRouter> load_router(const std::string& file) {
    if (file.empty()) return nullptr;
    auto r = route::open_router(*model_, file, o_.model.session_options());
    router_file_ = file;
    return r;
  }
  LayerPath router_path(size_t candidate) const {
    return parse_layer_path(router_->file().candidate_paths.at(candidate),
                            model_->hparams().n_layer);
  }

  // Routed: picks the turn's path from the whole prompt. A new path re-reads the conversation
  // from the router's prefix run; the same path keeps its KV and computes only the new turn.
  void route_turn(const std::vector<int32_t>& tokens) {
    const auto c = router_->choose(tokens);
    route_key_ = c.key;
    fmt::print(stderr, "route: {} (p = {:.3f}) after layer {}\n", c.key, c.probability,
               router_->file().feature_layer);
    if (c.path == session_.path()) {
      session_.set_prefix_cache(nullptr);
      return;
    }
    session_.set_path(c.path);
    session_.set_prefix_cache(&router_->cache());
    held_.clear();
  }

  // A command's answer: a line, or with --jsonl a {"info": ...} record.
  void say(const std::string& text) {
    if (o_.jsonl)
      fmt::print("{}\n", nlohmann::json{{"info", text}}.dump());
    else
      fmt::print("{}\n", text);
  }

  void reply(const std::string& user, bool tty) {
    messages_.push_back({"user", user});
    std::string prompt = format_chat(family_, messages_, true);
    EncodeOptions eo;
    eo.parse_special = true;
    std::vector<int32_t> tokens = model_->tokenizer()->encode(prompt, eo);
    if (router_) route_turn(tokens);
    // Keep the KV of the conversation so far; only the new turn is computed.
    size_t keep = 0;
    while (keep < held_.size() && keep + 1 < tokens.size() && held_[keep] == tokens[keep]) ++keep;
    session_.truncate(static_cast<int>(keep));
    GenerateOptions go;
    go.max_tokens = o_.n_predict;
    go.sampler = o_.sampler;
    g_interrupted = false;
    g_generating = true;
    try {
      last_ = generate(
          session_, model_->tokenizer(), std::span(tokens).subspan(keep), go,
          [&](const GenerationChunk& c) {
            if (!o_.jsonl) {
              fmt::print("{}", c.text);
              std::fflush(stdout);
            }
            return true;
          },
          [] { return g_interrupted.load(); });
    } catch (const Error&) {
      g_generating = false;
      messages_.pop_back();
      session_.reset();
      held_.clear();
      if (!o_.jsonl) fmt::print("\n");
      throw;
    }
    g_generating = false;
    const bool interrupted = last_.finish == FinishReason::Cancelled;
    const bool context_full =
        last_.finish == FinishReason::Length && session_.n_past() >= session_.n_ctx();
    if (o_.jsonl) {
      nlohmann::json rec{{"reply", last_.text},
                         {"finish_reason", interrupted    ? "interrupted"
                                           : context_full ? "context_full"
                                                          : finish_reason_name(last_.finish)},
                         {"tokens", last_.completion_tokens}};
      if (router_) {
        rec["path"] = session_.path().canonical();
        rec["route"] = route_key_;
      }
      fmt::print("{}\n", rec.dump());
    } else {
      fmt::print("\n");
      if (tty) fmt::print("\n");
    }
    std::fflush(stdout);
    if (interrupted)
      fmt::print(stderr, "[reply interrupted after {} tokens; the conversation is kept]\n",
                 last_.completion_tokens);
    if (context_full)
      fmt::print(stderr,
                 "[the reply stopped at the end of the context ({} tokens); /reset starts "
                 "afresh]\n",
                 session_.n_ctx());
    // The session also holds the reply's tokens, but the next prompt re-encodes the reply, which
    // may tokenize differently: only the prompt's tokens are a prefix we can trust.
    held_ = tokens;
    messages_.push_back({"assistant", last_.text});
  }

  const ChatOptions& o_;
  std::unique_ptr<Model> model_;
  // Set by load_router() while router_ is initialised, so declared before it.
  std::string router_file_, route_key_;        // route_key_: the last turn's candidate
  std::unique_ptr<route::PathRouter> router_;  // --path auto:FILE (or /path auto:FILE)
  Session session_;
  std::string family_;
  std::vector<ChatMessage> messages_;
  std::vector<int32_t> held_;  // tokens whose KV the session holds, as a prefix
  GenerationResult last_;
};

int run_chat(const ChatOptions& o) {
  Chat chat(o);
  install_sigint_handler();
  const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && !o.jsonl;
  // Errors go to stderr, so stdout holds only replies; a script learns of them from the exit code.
  int failures = 0;
  auto handle = [&](const std::string& line) {
    try {
      return chat.handle(line, tty);
    } catch (const Error& e) {
      ++failures;
      fmt::print(stderr, "reprise: error: {}\n", e.what());
      return true;
    }
  };
  if (tty) {
    fmt::print("{}\n{}\n\n", chat.describe(), kHelp);
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

void add_chat(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ChatOptions>();
  auto* sub = app.add_subcommand("chat", "talk to a model; /path switches the layer path");
  o->model.add_to(*sub);
  sub->add_option("--system", o->system, "system prompt");
  sub->add_option("--chat-template", o->chat_template,
                  "chatml, llama3, llama2, mistral, gemma (default: from the model, else chatml)");
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

const CommandRegistration kRegistration(30, add_chat);

}  // namespace
}  // namespace reprise::cli
