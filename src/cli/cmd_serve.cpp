// reprise serve: an OpenAI-compatible HTTP server whose requests may choose their layer path.
#include <fmt/format.h>
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "route/prefix_features.h"
#include "serve/server.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct ServeOptions {
  ModelOptions model;
  serve::ServerOptions server;
  bool quiet = false;
};

int run_serve(ServeOptions& o) {
  if (!route::auto_router_file(o.model.path).empty())
    throw Error(
        "serve: --path auto:FILE is not a default path; use --router FILE (then model "
        "'<id>:auto' or \"layer_path\": \"auto\" routes a request)");
  auto m = o.model.load();
  serve::ServerOptions so = o.server;
  so.default_path = layer_path_spec(o.model.path);
  so.session = o.model.session_options();
  so.log_requests = !o.quiet;

  // SIGINT/SIGTERM are taken by one thread with sigwait (blocked everywhere else, including the
  // server's threads, which inherit this mask), so stopping runs outside a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  serve::Server server(*m, so);
  const int port = server.bind();
  const serve::ServedModel& served = server.served();
  fmt::print(stderr,
             "reprise serve: http://{}:{}/v1 — model {} ({}), path {}, {} slot(s) x {} "
             "tokens, chat template {}{}\n",
             so.host, port, served.id, m->path(), served.default_path.canonical(), so.parallel,
             served.n_ctx, served.chat_family, so.api_key.empty() ? "" : ", API key required");
  for (const auto& [name, path] : served.named_paths)
    fmt::print(stderr, "  model {}:{} runs path {}\n", served.id, name, path.canonical());
  if (!served.route_candidates.empty()) {
    fmt::print(stderr,
               "  model {}:{} routes each prompt (router {}, after layer {}) to:", served.id,
               serve::kRoutedPath, served.router_file, served.route_feature_layer);
    for (const auto& [key, path] : served.route_candidates)
      fmt::print(stderr, " {} ({})", key, path.canonical());
    fmt::print(stderr, "\n");
  }

  std::atomic<bool> done{false};
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!done) {
      fmt::print(stderr, "reprise serve: stopping\n");
      server.stop();
    }
  });
  server.run();
  done = true;
  pthread_kill(watcher.native_handle(), SIGTERM);  // wakes the watcher if no signal came
  watcher.join();
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ServeOptions>();
  auto* sub =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (per-request layer paths)");
  o->model.add_to(*sub);
  serve::ServerOptions& s = o->server;
  sub->add_option("--host", s.host, "address to listen on")->capture_default_str();
  sub->add_option("--port", s.port, "port to listen on (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--parallel", s.parallel, "requests generating at once (one KV cache each)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_option("--queue", s.max_queue, "requests waiting for a slot before 503")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  sub->add_option("--api-key", s.api_key, "require 'Authorization: Bearer KEY'")
      ->envname("REPRISE_API_KEY");
  sub->add_option("--named-path", s.named_paths,
                  "NAME=SPEC: also serve the path SPEC as model '<id>:NAME' (repeatable)");
  sub->add_option("--router", s.router_file,
                  "router file (`reprise route train`): serve model '<id>:auto' and accept "
                  "\"layer_path\": \"auto\", which run the path it picks per prompt");
  sub->add_option("--chat-template", s.chat_template,
                  "chat format: chatml, llama3, llama2, mistral, gemma (default: the model's, "
                  "else chatml)");
  sub->add_option("--alias", s.model_id, "model id to serve under (default: file name)");
  sub->add_option("--max-body", s.max_body_bytes, "largest request body in bytes (413 above)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->capture_default_str();
  sub->add_option("--max-path-len", s.max_path_len,
                  "most positions a request's layer path may have (default 4 x layers)")
      ->check(CLI::Range(0, 4096));
  sub->add_option_function<double>(
         "--timeout",
         [&s](double secs) {
           s.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
         },
         "seconds a generation request may take, queueing included; a reply cut short ends "
         "with finish_reason 'timeout' (0 = no limit) [default: 600]")
      ->check(CLI::Range(0.0, 1e7));
  sub->add_option_function<int>(
         "--io-timeout", [&s](int secs) { s.io_timeout = std::chrono::seconds(secs); },
         "seconds a client may stall while sending a request or reading a reply [default: 30]")
      ->check(CLI::Range(1, 86400));
  sub->add_option("--temp", s.default_temperature,
                  "temperature for requests that send none (OpenAI's default 1; 0 = greedy)")
      ->check(CLI::Range(0.0f, 2.0f))
      ->capture_default_str();
  sub->add_flag("--bos-token-prompts", s.bos_token_prompts,
                "start token-id prompts with BOS when the vocabulary adds one, as text prompts "
                "(lm-eval's local-completions then scores as `reprise eval` does)");
  sub->add_flag("--quiet", o->quiet, "do not log requests on stderr");
  sub->callback([&run, o] { run = [o] { return run_serve(*o); }; });
}

}  // namespace reprise::cli
