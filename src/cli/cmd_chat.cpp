// reprise chat: an interactive conversation along a layer path, switchable mid-conversation.
//
// On a terminal it reads lines with GNU readline (editing, history); otherwise it reads one user
// turn per line from stdin and prints each reply on its own line, so it can be scripted.
#include <fmt/format.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <unistd.h>

#include <iostream>

#include "cli/common.h"
#include "engine/generator.h"
#include "engine/sampler.h"
#include "model/chat_template.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct ChatOptions {
  ModelOptions model;
  std::string system;
  std::string chat_template;
  int n_predict = 256;
  SamplerOptions sampler{0.8f, 40, 0.95f, 42};
};

const char* kHelp =
    "commands: /path SPEC (switch the layer path; the conversation is kept and re-read), "
    "/reset (forget the conversation), /stats, /help, /quit";

class Chat {
 public:
  explicit Chat(const ChatOptions& o)
      : o_(o),
        model_(o.model.load()),
        session_(*model_, o.model.layer_path(*model_), o.model.session_options()) {
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
                       session_.path().canonical(), family_);
  }

  // Handles one line of input; returns false to quit.
  bool handle(const std::string& line, bool tty) {
    if (line == "/quit" || line == "/exit") return false;
    if (line == "/help") {
      fmt::print("{}\n", kHelp);
    } else if (line == "/reset") {
      messages_.erase(std::remove_if(messages_.begin(), messages_.end(),
                                     [](auto& m) { return m.role != "system"; }),
                      messages_.end());
      fmt::print("conversation reset\n");
    } else if (line.rfind("/path", 0) == 0) {
      std::string spec = line.size() > 5 ? line.substr(6) : "";
      session_.set_path(parse_layer_path(spec, model_->hparams().n_layer));
      held_.clear();
      fmt::print("path set to {}\n", session_.path().canonical());
    } else if (line == "/stats") {
      fmt::print("{}; {} turns; last reply {} tokens at {:.1f} t/s; {} tokens in context\n",
                 describe(), messages_.size(), last_.completion_tokens,
                 last_.completion_tokens / std::max(last_.decode_seconds, 1e-9), session_.n_past());
    } else if (!line.empty() && line[0] == '/') {
      fmt::print("unknown command {}; {}\n", line, kHelp);
    } else if (!line.empty()) {
      reply(line, tty);
    }
    std::fflush(stdout);
    return true;
  }

 private:
  void reply(const std::string& user, bool tty) {
    messages_.push_back({"user", user});
    std::string prompt = format_chat(family_, messages_, true);
    EncodeOptions eo;
    eo.parse_special = true;
    std::vector<int32_t> tokens = model_->tokenizer()->encode(prompt, eo);
    // Keep the KV of the conversation so far; only the new turn is computed.
    size_t keep = 0;
    while (keep < held_.size() && keep + 1 < tokens.size() && held_[keep] == tokens[keep]) ++keep;
    session_.truncate(static_cast<int>(keep));
    GenerateOptions go;
    go.max_tokens = o_.n_predict;
    go.sampler = o_.sampler;
    try {
      last_ = generate(session_, model_->tokenizer(), std::span(tokens).subspan(keep), go,
                       [&](const GenerationChunk& c) {
                         fmt::print("{}", c.text);
                         std::fflush(stdout);
                         return true;
                       });
    } catch (const Error& e) {
      messages_.pop_back();
      session_.reset();
      held_.clear();
      fmt::print("\n[error: {}]\n", e.what());
      return;
    }
    fmt::print("\n");
    if (tty) fmt::print("\n");
    // The session also holds the reply's tokens, but the next prompt re-encodes the reply, which
    // may tokenize differently: only the prompt's tokens are a prefix we can trust.
    held_ = tokens;
    messages_.push_back({"assistant", last_.text});
  }

  const ChatOptions& o_;
  std::unique_ptr<Model> model_;
  Session session_;
  std::string family_;
  std::vector<ChatMessage> messages_;
  std::vector<int32_t> held_;  // tokens whose KV the session holds, as a prefix
  GenerationResult last_;
};

int run_chat(const ChatOptions& o) {
  Chat chat(o);
  const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (tty) {
    fmt::print("{}\n{}\n\n", chat.describe(), kHelp);
    for (;;) {
      char* raw = readline("> ");
      if (!raw) break;
      std::string line(raw);
      std::free(raw);
      if (!line.empty()) add_history(line.c_str());
      try {
        if (!chat.handle(line, true)) break;
      } catch (const Error& e) {
        fmt::print("[error: {}]\n", e.what());
      }
    }
    return 0;
  }
  for (std::string line; std::getline(std::cin, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      if (!chat.handle(line, false)) break;
    } catch (const Error& e) {
      fmt::print("[error: {}]\n", e.what());
      std::fflush(stdout);
    }
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
  sub->add_option("--temp", o->sampler.temperature, "temperature (0 = greedy)");
  sub->add_option("--top-k", o->sampler.top_k, "keep the k most likely tokens (0 = all)");
  sub->add_option("--top-p", o->sampler.top_p, "nucleus probability mass");
  sub->add_option("--seed", o->sampler.seed, "random seed");
  sub->callback([&run, o] { run = [o] { return run_chat(*o); }; });
}

const CommandRegistration kRegistration(30, add_chat);

}  // namespace
}  // namespace reprise::cli
