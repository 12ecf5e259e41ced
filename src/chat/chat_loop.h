// The input lines of `reprise chat`: each is a user turn, answered by the model, or a command
// (/path, /reset, /stats, /help, /quit). Replies stream to `out` as they are generated, or with
// `jsonl` go out as one JSON record per turn; notes (the route taken, an interrupted reply, a full
// context) go to `err`.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "chat/conversation.h"
#include "engine/generator.h"

namespace reprise::chat {

// The commands, as /help lists them.
extern const char* const kCommandHelp;

struct ChatLoopOptions {
  GenerateOptions generate;  // each reply's budget and sampling
  bool jsonl = false;        // {"reply", "finish_reason", "tokens"[, "path", "route"]} per turn
  bool tty = false;          // a terminal: a blank line after each reply
  // /path SPEC's argument as a layer path (notation, or a recipe file); throws Error.
  std::function<LayerPath(const std::string& spec, int n_layer)> parse_path;
  CancelCheck cancelled;  // polled between tokens: true stops the reply, keeping what it said
  // Called with true before a reply is generated and false after it (the CLI's Ctrl-C stops a
  // reply then, and ends the program otherwise).
  std::function<void(bool generating)> on_generating = [](bool) {};
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

class ChatLoop {
 public:
  // `conv` must outlive the loop.
  ChatLoop(Conversation& conv, ChatLoopOptions opts) : conv_(conv), opts_(std::move(opts)) {}

  // Handles one line of input; returns false to quit. Throws Error for a failed command or reply
  // (the conversation is kept as it was before the line).
  bool handle(const std::string& line);

 private:
  void switch_path(const std::string& spec);
  void say(const std::string& text);
  void reply(const std::string& user);

  Conversation& conv_;
  ChatLoopOptions opts_;
  Turn last_;
};

}  // namespace reprise::chat
