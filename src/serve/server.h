// The OpenAI-compatible HTTP server behind `reprise serve`.
//
//   GET  /health                 liveness and slot usage (no key needed)
//   GET  /v1/models              the model, plus "<id>:<name>" per named path (and "<id>:auto"
//                                with --router)
//   GET  /v1/models/{id}
//   POST /v1/completions         (stream: true → server-sent events; echo + logprobs: the
//                                prompt's own log-probabilities; several prompts, one choice each)
//   POST /v1/chat/completions    (stream: true → server-sent events)
//   POST /tokenize, /detokenize, GET /tokenizer_info   vLLM's shapes (serve/tokenize_api.h)
//
// Each request may carry "layer_path" (path notation) to run its own path over the one shared
// copy of the weights, or "auto" to have the --router pick one from the prompt. Requests run on
// `parallel` slots, each a Session with its own KV cache; up to `max_queue` more wait in line, and
// further ones get 503. A request whose client goes away stops generating at the next token.
// httplib stays out of this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/model.h"
#include "serve/openai_request.h"
#include "serve/slot_pool.h"

namespace reprise::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port (see Server::port())
  std::string model_id;                  // "" = the model file's name without extension
  std::string default_path;              // layer path notation; "" = all layers
  std::vector<std::string> named_paths;  // "NAME=SPEC", served as model "<id>:NAME"
  int parallel = 1;                      // slots generating at once
  int max_queue = 16;                    // requests waiting for a slot before 503
  SessionOptions session;                // per slot: --ctx, threads (0 = cores / parallel)
  std::string api_key;                   // "" = no authentication
  std::string chat_template;             // family; "" or "auto" = the model's own, else chatml
  size_t max_body_bytes = 2u << 20;      // larger request bodies get 413
  int max_path_len = 0;                  // positions a request's path may have; 0 = 4 x layers
  int http_threads = 0;                  // 0 = parallel + max_queue + 8
  // A router file (`reprise route train`): model "<id>:auto" and "layer_path": "auto" then run
  // the path it picks per prompt. "" = none.
  std::string router_file;
  // A reply that has not written for this long writes a few harmless bytes (SSE comment, JSON
  // whitespace): a failed write is how a vanished client is noticed.
  std::chrono::milliseconds heartbeat{1000};
  // Wall time a generation request may take from arrival, queueing included; 0 = no limit. A
  // reply cut short ends normally with finish_reason "timeout" and what was generated so far; a
  // request still queued when it runs out gets an error body instead.
  std::chrono::milliseconds request_timeout{600'000};
  // Socket read/write timeout: a client that stops sending its request (or reading the reply)
  // for this long loses the connection, so a slow upload cannot hold an HTTP thread forever.
  std::chrono::seconds io_timeout{30};
  float default_temperature = 1.0f;  // for requests that send none (OpenAI's default)
  // Token-id completions prompts get the vocabulary's BOS first when it adds one (see
  // ServedModel::bos_token_prompts): how lm-eval's local-completions matches `reprise eval`.
  bool bos_token_prompts = false;
  // One timestamped line on stderr per generation request and per error reply (4xx, 5xx).
  bool log_requests = false;
};

class Server {
 public:
  // Checks the options against the model (paths, names, template, router file) and allocates
  // the slots. Throws Error naming the bad option.
  Server(const Model& model, const ServerOptions& opts);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port. Throws Error when the address cannot be bound.
  int bind();
  // Serves until stop() (binds first if needed).
  void run();
  // bind() + run() on a background thread; returns the port.
  int start();
  // Stops accepting, cancels running generations, and waits for the threads. Idempotent.
  void stop();

  int port() const;
  const ServedModel& served() const;
  SlotStats slot_stats() const;
  // Generation requests abandoned because the client went away (or the server stopped).
  uint64_t cancelled_requests() const;
  // Requests that reached ServerOptions::request_timeout (cut short, or never got a slot).
  uint64_t timed_out_requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise::serve
