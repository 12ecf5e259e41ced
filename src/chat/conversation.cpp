#include "chat/conversation.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/common_prefix.h"
#include "util/error.h"

namespace reprise::chat {

Conversation::Conversation(const Model& model, LayerPath path, const std::string& router_file,
                           ConversationOptions opts)
    : model_(model),
      opts_(std::move(opts)),
      router_(open(router_file)),
      session_(model, router_ ? candidate_path(0) : std::move(path), opts_.session) {
  if (!model_.tokenizer())
    throw Error(fmt::format("{}: the model has no vocabulary; chat needs text", model_.path()));
  if (!opts_.system.empty()) {
    messages_.push_back({"system", opts_.system});
  } else if (opts_.model_default_system) {
    if (auto sys = default_system_message(model_.tokenizer()->vocab().chat_template))
      messages_.push_back({"system", *sys});
  }
}

std::unique_ptr<route::PathRouter> Conversation::open(const std::string& file) {
  if (file.empty()) return nullptr;
  auto r = route::open_router(model_, file, opts_.session);
  router_file_ = file;
  return r;
}

LayerPath Conversation::candidate_path(size_t candidate) const {
  return parse_layer_path(router_->file().candidate_paths.at(candidate), model_.hparams().n_layer);
}

void Conversation::set_path(LayerPath path) {
  router_.reset();
  session_.set_prefix_cache(nullptr);
  session_.set_path(std::move(path));
  held_.clear();
}

void Conversation::set_router(const std::string& router_file) {
  auto next = open(router_file);       // a bad file throws here, before anything changes
  session_.set_prefix_cache(nullptr);  // the old router's cache goes with it
  router_ = std::move(next);
  session_.set_path(candidate_path(0));
  held_.clear();
}

void Conversation::reset() {
  std::erase_if(messages_, [](const ChatMessage& m) { return m.role != "system"; });
}

std::string Conversation::describe() const {
  const std::string path = session_.path().canonical();
  return fmt::format("model {}, path {}, template {}", model_.name(),
                     router_ ? fmt::format("auto:{} (now {})", router_file_, path) : path,
                     opts_.chat_family);
}

// Routed: picks the turn's path from the whole prompt. A new path re-reads the conversation from
// the router's prefix run; the same path keeps its KV and computes only the new turn.
void Conversation::route_turn(const std::vector<int32_t>& tokens, Turn& turn) {
  const auto c = router_->choose(tokens);
  turn.route_key = c.key;
  turn.route_probability = c.probability;
  turn.route_layer = router_->file().feature_layer;
  if (c.path == session_.path()) {
    session_.set_prefix_cache(nullptr);
    return;
  }
  session_.set_path(c.path);
  session_.set_prefix_cache(&router_->cache());
  held_.clear();
}

Turn Conversation::reply(const std::string& user, const GenerateOptions& opts,
                         const ChunkCallback& on_chunk, const CancelCheck& cancelled) {
  messages_.push_back({"user", user});
  Turn turn;
  try {
    EncodeOptions eo;
    eo.parse_special = true;
    const std::vector<int32_t> tokens = model_.tokenizer()->encode(
        format_chat(opts_.chat_family, messages_, /*add_generation_prompt=*/true), eo);
    if (router_) route_turn(tokens, turn);
    // At least the prompt's last token is run again: its logits start the reply.
    const size_t keep =
        std::min(common_prefix(held_, tokens), std::max<size_t>(tokens.size(), 1) - 1);
    session_.truncate(static_cast<int>(keep));
    held_.clear();
    turn.result = generate(session_, model_.tokenizer(), std::span(tokens).subspan(keep), opts,
                           on_chunk, cancelled);
    held_ = tokens;
  } catch (const Error&) {
    messages_.pop_back();
    session_.reset();
    held_.clear();
    throw;
  }
  turn.context_full =
      turn.result.finish == FinishReason::Length && session_.n_past() >= session_.n_ctx();
  messages_.push_back({"assistant", turn.result.text});
  return turn;
}

}  // namespace reprise::chat
