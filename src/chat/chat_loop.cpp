#include "chat/chat_loop.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "route/prefix_features.h"
#include "util/error.h"

namespace reprise::chat {

const char* const kCommandHelp =
    "commands: /path SPEC (switch the layer path, or 'auto:ROUTER.json' to route each turn; the "
    "conversation is kept and re-read), "
    "/reset (forget the conversation), /stats, /help, /quit";

bool ChatLoop::handle(const std::string& line) {
  if (line == "/quit" || line == "/exit") return false;
  if (line == "/help") {
    say(kCommandHelp);
  } else if (line == "/reset") {
    conv_.reset();
    say("conversation reset");
  } else if (line == "/path" || line.starts_with("/path ")) {
    switch_path(line.size() > 5 ? line.substr(6) : "");
  } else if (line == "/stats") {
    const GenerationResult& r = last_.result;
    say(fmt::format("{}; {} turns; last reply {} tokens at {:.1f} t/s; {} tokens in context",
                    conv_.describe(), conv_.messages().size(), r.completion_tokens,
                    r.completion_tokens / std::max(r.decode_seconds, 1e-9), conv_.n_past()));
  } else if (!line.empty() && line[0] == '/') {
    throw Error(fmt::format("unknown command {}; {}", line, kCommandHelp));
  } else if (!line.empty()) {
    reply(line);
  }
  std::fflush(opts_.out);
  return true;
}

void ChatLoop::switch_path(const std::string& spec) {
  if (spec.find_first_not_of(" \t") == std::string::npos) {
    // No argument shows the path; switching back to all layers takes '/path all'.
    say(fmt::format("path {} (switch with /path SPEC; '/path all' for every layer)",
                    conv_.path().canonical()));
  } else if (const std::string file = route::auto_router_file(spec); !file.empty()) {
    conv_.set_router(file);
    say(fmt::format("path auto: each turn routed by {}", file));
  } else {
    LayerPath path = opts_.parse_path(spec, conv_.model().hparams().n_layer);
    if (path.layers.empty()) throw Error(fmt::format("layer path '{}' runs no layers", spec));
    conv_.set_path(std::move(path));
    say(fmt::format("path set to {}", conv_.path().canonical()));
  }
}

// A command's answer: a line, or with --jsonl an {"info": ...} record.
void ChatLoop::say(const std::string& text) {
  fmt::print(opts_.out, "{}\n", opts_.jsonl ? nlohmann::json{{"info", text}}.dump() : text);
}

void ChatLoop::reply(const std::string& user) {
  auto print = [&](const GenerationChunk& c) {
    if (!opts_.jsonl) {
      fmt::print(opts_.out, "{}", c.text);
      std::fflush(opts_.out);
    }
    return true;
  };
  opts_.on_generating(true);
  try {
    last_ = conv_.reply(user, opts_.generate, print, opts_.cancelled);
  } catch (const Error&) {
    opts_.on_generating(false);
    if (!opts_.jsonl) fmt::print(opts_.out, "\n");
    throw;
  }
  opts_.on_generating(false);
  const GenerationResult& r = last_.result;
  const bool interrupted = r.finish == FinishReason::Cancelled;
  if (opts_.jsonl) {
    nlohmann::json rec{{"reply", r.text},
                       {"finish_reason", interrupted          ? "interrupted"
                                         : last_.context_full ? "context_full"
                                                              : finish_reason_name(r.finish)},
                       {"tokens", r.completion_tokens}};
    if (conv_.routed()) {
      rec["path"] = conv_.path().canonical();
      rec["route"] = last_.route_key;
    }
    fmt::print(opts_.out, "{}\n", rec.dump());
  } else {
    fmt::print(opts_.out, "{}", opts_.tty ? "\n\n" : "\n");
  }
  std::fflush(opts_.out);
  if (conv_.routed())
    fmt::print(opts_.err, "route: {} (p = {:.3f}) after layer {}\n", last_.route_key,
               last_.route_probability, last_.route_layer);
  if (interrupted)
    fmt::print(opts_.err, "[reply interrupted after {} tokens; the conversation is kept]\n",
               r.completion_tokens);
  if (last_.context_full)
    fmt::print(opts_.err,
               "[the reply stopped at the end of the context ({} tokens); /reset starts afresh]\n",
               conv_.n_ctx());
}

}  // namespace reprise::chat
