// One conversation with a chat model (`reprise chat`): the messages so far, the chat family that
// renders them into a prompt, and the session that runs it along a layer path, or along the path
// a router (route::PathRouter, --path auto:FILE) picks for each turn.
//
// Each turn re-renders the whole conversation; the session keeps the KV of the longest prefix
// the new prompt shares with the last one, so only the new turn is computed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/layer_path.h"
#include "engine/session.h"
#include "model/chat_template.h"
#include "model/model.h"
#include "route/prefix_features.h"

namespace reprise::chat {

struct ConversationOptions {
  std::string chat_family;  // a format_chat family (resolve it with eval::resolve_chat_family)
  // The system turn; "" with model_default_system takes the one the model's own template writes
  // by default (right only when chat_family is the model's own), else none.
  std::string system;
  bool model_default_system = false;
  SessionOptions session;
};

// What a turn did besides its text.
struct Turn {
  GenerationResult result;
  bool context_full = false;  // the reply stopped because the context is full
  // Routed: the chosen candidate's key ("" on a fixed path), its probability, and the layer
  // after which the router read the prompt.
  std::string route_key;
  double route_probability = 0;
  int route_layer = -1;
};

class Conversation {
 public:
  // `model` must outlive the conversation. Runs along `path`, or, when `router_file` is not "",
  // along the paths that router picks (errors as route::open_router). Throws Error naming the
  // model when it has no vocabulary.
  Conversation(const Model& model, LayerPath path, const std::string& router_file,
               ConversationOptions opts);

  // Switches to a fixed path or to a router; the
  // conversation is kept and re-read along the new path at the next turn. A bad router file
  // throws and keeps the old setting.
  void set_path(LayerPath path);
  void set_router(const std::string& router_file);
  // Forgets the conversation but its system turn.
  void reset();

  // Adds `user`'s message, generates the assistant's reply into the conversation and returns it.
  // `opts.stop` and the callbacks are generate()'s. A cancelled reply is kept as far as it went;
  // on an Error the user's message is dropped and the session starts afresh next turn.
  Turn reply(const std::string& user, const GenerateOptions& opts, const ChunkCallback& on_chunk,
             const CancelCheck& cancelled = {});

  // "model NAME, path SPEC, template FAMILY" (routed: "path auto:FILE (now SPEC)").
  std::string describe() const;
  const Model& model() const { return model_; }
  const LayerPath& path() const { return session_.path(); }
  bool routed() const { return router_ != nullptr; }
  const std::string& chat_family() const { return opts_.chat_family; }
  const std::vector<ChatMessage>& messages() const { return messages_; }
  int n_past() const { return session_.n_past(); }
  int n_ctx() const { return session_.n_ctx(); }
  // Tokens the session has run so far (prefix reuse keeps this below the prompts' lengths).
  int64_t tokens_run() const { return session_.tokens_run(); }

 private:
  std::unique_ptr<route::PathRouter> open(const std::string& file);
  LayerPath candidate_path(size_t candidate) const;
  void route_turn(const std::vector<int32_t>& tokens, Turn& turn);

  const Model& model_;
  ConversationOptions opts_;
  std::string router_file_;                    // set by open() while router_ is initialised
  std::unique_ptr<route::PathRouter> router_;  // null on a fixed path
  Session session_;
  std::vector<ChatMessage> messages_;
  // The last prompt's tokens, whose KV the session holds as a prefix. Not the reply's: the next
  // prompt re-encodes the reply, which may tokenize differently.
  std::vector<int32_t> held_;
};

}  // namespace reprise::chat
