#include "serve/server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>

#include <sys/socket.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "eval/chat_family.h"
#include "route/prefix_features.h"
#include "serve/api_error.h"
#include "serve/openai_response.h"
#include "serve/prompt_scoring.h"
#include "serve/tokenize_api.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace reprise::serve {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

bool valid_path_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

// Compares every byte whatever the first mismatch, so that response timing does not reveal how
// much of a key was right (only whether its length was).
bool same_secret(std::string_view given, std::string_view key) {
  if (given.size() != key.size() || key.empty()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < key.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(key[i]);
  return diff == 0;
}

// The methods a known path answers to ("" for an unknown path).
std::string allowed_methods(const std::string& path) {
  if (path == "/v1/completions" || path == "/v1/chat/completions") return "POST";
  if (path == "/tokenize" || path == "/detokenize") return "POST";
  if (path == "/health" || path == "/v1/models" || path.starts_with("/v1/models/") ||
      path == "/tokenizer_info")
    return "GET";
  return "";
}

// " route=KEY" for the request log of a routed reply.
std::string route_note(const nlohmann::ordered_json& route) {
  return route.is_object() ? " route=" + route.value("candidate", std::string()) : std::string();
}

void reply_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(dump(error_json(e)), "application/json");
}

ServedModel make_served(const Model& model, const ServerOptions& o) {
  const int n_layer = model.hparams().n_layer;
  ServedModel s;
  s.model = &model;
  s.id = o.model_id;
  if (s.id.empty()) s.id = std::filesystem::path(model.path()).stem().string();
  if (s.id.empty()) s.id = model.name();
  if (s.id.find(':') != std::string::npos)
    throw Error(fmt::format("--alias '{}': a model name may not contain ':'", s.id));
  try {
    s.default_path = parse_layer_path(o.default_path, n_layer);
  } catch (const Error& e) {
    throw Error(fmt::format("--path: {}", e.what()));
  }
  if (s.default_path.layers.empty())
    throw Error(fmt::format("--path: layer path '{}' runs no layers", o.default_path));
  int longest = s.default_path.size();
  for (const std::string& np : o.named_paths) {
    const size_t eq = np.find('=');
    const std::string name = np.substr(0, eq);
    if (eq == std::string::npos || !valid_path_name(name))
      throw Error(
          fmt::format("--named-path '{}': expected NAME=SPEC with NAME made of letters, "
                      "digits, '-', '_', '.'",
                      np));
    for (const auto& [other, p] : s.named_paths)
      if (other == name) throw Error(fmt::format("--named-path: '{}' is given twice", name));
    if (name == kRoutedPath)
      throw Error(fmt::format("--named-path: the name '{}' is the router's (--router)", name));
    try {
      s.named_paths.emplace_back(name, parse_layer_path(np.substr(eq + 1), n_layer));
    } catch (const Error& e) {
      throw Error(fmt::format("--named-path {}: {}", name, e.what()));
    }
    if (s.named_paths.back().second.layers.empty())
      throw Error(
          fmt::format("--named-path {}: layer path '{}' runs no layers", name, np.substr(eq + 1)));
    longest = std::max(longest, s.named_paths.back().second.size());
  }
  s.default_temperature = o.default_temperature;
  s.bos_token_prompts = o.bos_token_prompts;
  s.max_path_len = o.max_path_len > 0 ? o.max_path_len : std::max(4 * n_layer, longest);
  if (longest > s.max_path_len)
    throw Error(fmt::format("a configured layer path has {} positions, more than --max-path-len {}",
                            longest, s.max_path_len));

  s.chat_family =
      eval::resolve_chat_family(o.chat_template, model.tokenizer(), eval::UnknownTemplate::ChatML,
                                "--chat-template", model.path());
  return s;
}

// httplib 0.11 listens with a backlog of 5: a burst of new connections overflows it, and the
// dropped SYNs are retried only after a second. Linux lets listen() be called again on the
// bound socket to enlarge the queue; the socket is only reachable from a subclass.
class HttpServer : public httplib::Server {
 public:
  void enlarge_backlog(int n) {
    const auto fd = svr_sock_.load();
    if (fd != INVALID_SOCKET) ::listen(fd, n);
  }
};

// Everything a reply's content provider needs after the handler has returned.
struct PendingReply {
  Job job;
  ReplyHeader header;
  std::unique_ptr<SlotPool::Reservation> reservation;
  Clock::time_point received;
};

// Writes a reply body, remembers whether the client is still there, and sends heartbeat bytes
// when nothing was written for a while (a write to a closed connection is what reveals it).
class ReplyWriter {
 public:
  ReplyWriter(httplib::DataSink& sink, bool sse, std::chrono::milliseconds heartbeat,
              const std::atomic<bool>& stopping)
      : sink_(sink), sse_(sse), heartbeat_(heartbeat), stopping_(stopping) {}

  bool write(std::string_view s) {
    if (broken_) return false;
    if (!s.empty() && !sink_.write(s.data(), s.size())) broken_ = true;
    last_ = Clock::now();
    return !broken_;
  }

  // False once the client is gone or the server is stopping.
  bool alive() {
    if (broken_ || stopping_.load()) return false;
    if (Clock::now() - last_ >= heartbeat_) write(sse_ ? ": keep-alive\n\n" : "\n");
    return !broken_;
  }

 private:
  httplib::DataSink& sink_;
  bool sse_;
  std::chrono::milliseconds heartbeat_;
  const std::atomic<bool>& stopping_;
  bool broken_ = false;
  Clock::time_point last_ = Clock::now();
};

}  // namespace

struct Server::Impl {
  Impl(const Model& m, const ServerOptions& o);

  // The HTTP surface, in parts: every route and handler is installed once, by the constructor.
  void install_routes();
  void install_auth();               // Authorization: Bearer KEY when --api-key is set
  void install_model_routes();       // /health, /v1/models, /v1/models/NAME
  void install_tokenizer_routes();   // /tokenize, /detokenize, /tokenizer_info
  void install_generation_routes();  // /v1/completions, /v1/chat/completions
  void install_error_handlers();     // httplib's own errors in our shape; a log line per error
  // A generation request's body read through `reader` into `body`, at most --max-body bytes.
  // False when it is too large or unreadable (the error reply is then set on `res`).
  bool read_body(const httplib::ContentReader& reader, httplib::Response& res, std::string& body);
  ApiError body_too_large() const;
  // --router: one PathRouter per slot, and the candidates in `served`. Throws Error naming the
  // file (other model, corrupt JSON, missing fields, a path too long for --max-path-len).
  void load_routers(const SessionOptions& so);
  void handle_generate(Endpoint endpoint, const httplib::Request& req, const std::string& body,
                       httplib::Response& res);
  // Runs a reply inside its content provider; false drops the connection.
  bool write_reply(PendingReply& p, const std::string& path, httplib::DataSink& sink);
  // Waits in the queue for a slot: nullptr when the client went away meanwhile; throws ApiError
  // 503 when --request-timeout passed first.
  std::unique_ptr<SlotPool::Lease> wait_for_slot(PendingReply& p, const std::string& path,
                                                 ReplyWriter& out);
  // Whether the request has used up --request-timeout since it arrived.
  bool out_of_time(const PendingReply& p) const;
  // A streamed reply, or a chat reply: one prompt generated on `session`. False when the client
  // went away.
  bool write_generation(PendingReply& p, const std::string& path, ReplyWriter& out,
                        Session& session, int slot);
  // A non-streamed completions reply: one choice per prompt, with the prompt's own
  // log-probabilities when echoed. False when the client went away.
  bool write_completions(PendingReply& p, const std::string& path, ReplyWriter& out,
                         Session& session, int slot);
  // One prompt of such a reply into `c` (its text, finish reason, token count, logprobs and, when
  // routed, its path). False when the client went away; finish Timeout when the request ran out
  // of time.
  bool complete_prompt(PendingReply& p, const JobPrompt& prompt, const std::string& path,
                       ReplyWriter& out, Session& session, int slot, CompletionChoice& c);
  // The path one prompt runs: the job's, or for a routed job the one slot `slot`'s router picks
  // from the prompt (its prefix run then left in the router's cache, which the session reuses).
  struct PromptPath {
    LayerPath path;
    json route;  // route_json() when routed, else null
  };
  // Points the session at the prompt's path and restarts its sequence.
  PromptPath start_prompt(const Job& job, const JobPrompt& prompt, Session& session, int slot);
  uint64_t random();
  void log(const std::string& line);

  const Model& model;
  ServerOptions opts;
  ServedModel served;
  std::unique_ptr<SlotPool> slots;
  // With --router: one per slot (a router runs prompts through its own prefix session).
  std::vector<std::unique_ptr<route::PathRouter>> routers;
  HttpServer http;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> n_cancelled{0};
  std::atomic<uint64_t> n_timed_out{0};
  int port = -1;
  int64_t created = 0;
  std::mutex rng_mu;
  std::mt19937_64 rng;
  std::mutex log_mu;
};

Server::Impl::Impl(const Model& m, const ServerOptions& o)
    : model(m), opts(o), served(make_served(m, o)), rng(std::random_device{}()) {
  if (opts.parallel < 1 || opts.parallel > 256)
    throw Error(fmt::format("--parallel must be 1..256, got {}", opts.parallel));
  if (opts.max_queue < 0 || opts.max_queue > 65536)
    throw Error(fmt::format("--queue must be 0..65536, got {}", opts.max_queue));
  SessionOptions so = opts.session;
  // Slots share the cores: each gets its share unless told otherwise.
  if (so.n_threads <= 0) so.n_threads = std::max(1, ThreadPool::default_threads() / opts.parallel);
  slots = std::make_unique<SlotPool>(model, served.default_path, opts.parallel, opts.max_queue, so);
  served.n_ctx = slots->n_ctx();
  if (!opts.router_file.empty()) load_routers(so);
  created = static_cast<int64_t>(std::time(nullptr));
  // A client that closes its socket must cost a write error, never the process.
  std::signal(SIGPIPE, SIG_IGN);

  const int threads =
      opts.http_threads > 0 ? opts.http_threads : opts.parallel + opts.max_queue + 8;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(opts.max_body_bytes);
  http.set_read_timeout(opts.io_timeout);
  http.set_write_timeout(opts.io_timeout);
  http.set_keep_alive_max_count(100);
  // Replies go out in small pieces (headers, then chunks); Nagle's algorithm would hold each
  // back for the client's delayed ACK, some 40 ms a time.
  http.set_tcp_nodelay(true);
  // httplib's default options add SO_REUSEPORT, with which a second server binds the same port
  // and silently takes a share of the connections. SO_REUSEADDR alone still allows a quick
  // restart over connections in TIME_WAIT, but not two listeners.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  install_routes();
}

void Server::Impl::load_routers(const SessionOptions& so) {
  const std::string& file = opts.router_file;
  try {
    // A server routes one prompt at a time per slot: only the latest prefix run is kept.
    for (int i = 0; i < opts.parallel; ++i)
      routers.push_back(route::open_router(model, file, so, 0));
  } catch (const Error& e) {
    throw Error(fmt::format("--router {}", e.what()));
  }
  const route::RouterFile& rf = routers.front()->file();
  served.router_file = file;
  served.route_feature_layer = rf.feature_layer;
  const int n_layer = model.hparams().n_layer;
  for (size_t c = 0; c < rf.candidate_keys.size(); ++c) {
    LayerPath p = parse_layer_path(rf.candidate_paths[c], n_layer);
    if (p.size() > served.max_path_len)
      throw Error(
          fmt::format("--router {}: candidate '{}' has {} positions, more than "
                      "--max-path-len {}",
                      file, rf.candidate_keys[c], p.size(), served.max_path_len));
    served.route_candidates.emplace_back(rf.candidate_keys[c], std::move(p));
  }
}

Server::Impl::PromptPath Server::Impl::start_prompt(const Job& job, const JobPrompt& prompt,
                                                    Session& session, int slot) {
  PromptPath out{job.path, nullptr};
  route::PathRouter* router = job.routed ? routers.at(static_cast<size_t>(slot)).get() : nullptr;
  // A cache left set for an unrouted job would run every prompt's prefix twice.
  session.set_prefix_cache(router ? &router->cache() : nullptr);
  if (router) {
    const route::PathRouter::Choice c = router->choose(prompt.tokens);
    out.path = c.path;
    out.route = route_json(c.key, c.probability, router->file().feature_layer);
  }
  if (session.path() == out.path)
    session.reset();
  else
    session.set_path(out.path);
  return out;
}

uint64_t Server::Impl::random() {
  std::lock_guard lock(rng_mu);
  return rng();
}

void Server::Impl::log(const std::string& line) {
  if (!opts.log_requests) return;
  // UTC to the millisecond, ISO 8601, so lines from several servers sort together.
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::lock_guard lock(log_mu);
  fmt::print(stderr, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {}\n", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms, line);
}

void Server::Impl::install_routes() {
  http.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  install_auth();
  http.Options(R"(/.*)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
  });
  install_model_routes();
  install_tokenizer_routes();
  install_generation_routes();
  install_error_handlers();
}

void Server::Impl::install_auth() {
  using HR = httplib::Server::HandlerResponse;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Browsers send preflight requests without credentials; /health stays open for probes.
    if (opts.api_key.empty() || req.method == "OPTIONS" || req.path == "/health")
      return HR::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    // The scheme name is case-insensitive (RFC 9110 section 11.1); the key is not.
    constexpr std::string_view kBearer = "bearer ";
    auto is_bearer = [&] {
      if (auth.size() < kBearer.size()) return false;
      for (size_t i = 0; i < kBearer.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(auth[i])) != kBearer[i]) return false;
      return true;
    };
    if (auth.empty()) {
      reply_error(res, ApiError(401, "Missing API key: send the header 'Authorization: Bearer KEY'",
                                "", "invalid_api_key"));
      return HR::Handled;
    }
    if (!is_bearer() || !same_secret(auth.substr(kBearer.size()), opts.api_key)) {
      reply_error(res, ApiError(401, "Incorrect API key provided", "", "invalid_api_key"));
      return HR::Handled;
    }
    return HR::Unhandled;
  });
}

void Server::Impl::install_model_routes() {
  using httplib::Request;
  using httplib::Response;
  http.Get("/health", [this](const Request&, Response& res) {
    const SlotStats s = slots->stats();
    res.set_content(dump(json{{"status", "ok"},
                              {"slots", s.slots},
                              {"slots_busy", s.busy},
                              {"queued", s.waiting},
                              {"max_queue", s.max_waiting}}),
                    "application/json");
  });

  // A routed name (path nullptr) lists "layer_path": "auto" and the router's candidates.
  auto model_entry = [this](const std::string& name, const LayerPath* path) {
    json e{{"id", name},
           {"object", "model"},
           {"created", created},
           {"owned_by", "reprise"},
           {"layer_path", path ? path->canonical() : std::string(kRoutedPath)}};
    if (!path) {
      json cands = json::array();
      for (const auto& [key, p] : served.route_candidates)
        cands.push_back({{"key", key}, {"path", p.canonical()}});
      e["router"] = {{"file", served.router_file},
                     {"feature_layer", served.route_feature_layer},
                     {"candidates", std::move(cands)}};
    }
    return e;
  };
  http.Get("/v1/models", [this, model_entry](const Request&, Response& res) {
    json data = json::array();
    for (const auto& [name, path] : model_names(served)) data.push_back(model_entry(name, path));
    res.set_content(dump(json{{"object", "list"}, {"data", std::move(data)}}), "application/json");
  });
  http.Get(R"(/v1/models/(.+))", [this, model_entry](const Request& req, Response& res) {
    const std::string want = req.matches[1];
    for (const auto& [name, path] : model_names(served))
      if (name == want) {
        res.set_content(dump(model_entry(name, path)), "application/json");
        return;
      }
    reply_error(res, ApiError(404, fmt::format("The model '{}' does not exist", want), "model",
                              "model_not_found"));
  });
}

// lm-evaluation-harness's remote tokenizer (serve/tokenize_api.h); bodies are small.
void Server::Impl::install_tokenizer_routes() {
  auto tokenizer_route = [this](auto reply) {
    return [this, reply](const httplib::Request& req, httplib::Response& res) {
      try {
        res.set_content(dump(reply(req.body)), "application/json");
      } catch (const ApiError& e) {
        reply_error(res, e);
      }
    };
  };
  http.Post("/tokenize", tokenizer_route([this](const std::string& body) {
              return tokenize_reply(model.tokenizer(), body, served.n_ctx);
            }));
  http.Post("/detokenize", tokenizer_route([this](const std::string& body) {
              return detokenize_reply(model.tokenizer(), body);
            }));
  http.Get("/tokenizer_info", tokenizer_route([this](const std::string&) {
             return tokenizer_info(model.tokenizer());
           }));
}

ApiError Server::Impl::body_too_large() const {
  return ApiError(413,
                  fmt::format("Request body too large: the limit is {} bytes", opts.max_body_bytes),
                  "", "request_too_large");
}

// Bodies are read through a ContentReader so that the size limit also holds for chunked
// uploads, which httplib would otherwise read whole.
bool Server::Impl::read_body(const httplib::ContentReader& reader, httplib::Response& res,
                             std::string& body) {
  bool too_large = false;
  const bool read = reader([&](const char* data, size_t n) {
    if (body.size() + n > opts.max_body_bytes) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large || res.status == 413 || !read) {
    reply_error(res, too_large || res.status == 413
                         ? body_too_large()
                         : ApiError(400, "could not read the request body"));
    res.set_header("Connection", "close");  // the rest of the body is still unread
    return false;
  }
  return true;
}

void Server::Impl::install_generation_routes() {
  auto generation_route = [this](Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(reader, res, body)) handle_generate(endpoint, req, body, res);
    };
  };
  http.Post("/v1/completions", generation_route(Endpoint::Completions));
  http.Post("/v1/chat/completions", generation_route(Endpoint::ChatCompletions));
}

void Server::Impl::install_error_handlers() {
  using httplib::Request;
  using httplib::Response;
  using HR = httplib::Server::HandlerResponse;
  // Replies httplib makes itself (no route, body too large, unreadable request) get the same
  // error shape as ours; ours already have a body and pass through.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const Request& req,
                                                                     Response& res) {
    if (!res.body.empty()) return HR::Unhandled;
    // httplib answers a known path with the wrong method as an unknown one.
    const std::string allowed = allowed_methods(req.path);
    if (res.status == 404 && !allowed.empty()) {
      reply_error(res, ApiError(405,
                                fmt::format("Method {} is not allowed on {}; use {}", req.method,
                                            req.path, allowed),
                                "", "method_not_allowed"));
      res.set_header("Allow", allowed);
      return HR::Handled;
    }
    if (res.status == 404)
      reply_error(res, ApiError(404, fmt::format("Unknown endpoint: {} {}", req.method, req.path),
                                "", "unknown_url"));
    else if (res.status == 413)
      reply_error(res, body_too_large());
    else
      reply_error(res, ApiError(res.status, fmt::format("HTTP error {}", res.status)));
    return HR::Handled;
  }));
  // Every error reply gets a log line, whichever handler (or httplib itself) produced it.
  http.set_logger([this](const Request& req, const Response& res) {
    if (res.status < 400) return;
    const json body = json::parse(res.body, nullptr, false);
    const json* msg = body.is_object() && body.contains("error") && body["error"].is_object()
                          ? &body["error"]["message"]
                          : nullptr;
    log(fmt::format("{} {} {} {}", req.method, req.path, res.status,
                    msg && msg->is_string() ? msg->get<std::string>() : std::string()));
  });
  http.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, ApiError(500, what));
  });
}

void Server::Impl::handle_generate(Endpoint endpoint, const httplib::Request& req,
                                   const std::string& body, httplib::Response& res) {
  auto pending = std::make_shared<PendingReply>();
  pending->received = Clock::now();
  try {
    ApiRequest api = parse_request(endpoint, body);
    pending->job = resolve_request(api, served, random());
    pending->reservation = slots->reserve();
    if (!pending->reservation) {
      const SlotStats s = slots->stats();
      throw ApiError(503,
                     fmt::format("The server is busy ({} requests running, {} waiting); retry "
                                 "later",
                                 s.busy, s.waiting),
                     "", "server_busy");
    }
  } catch (const ApiError& e) {
    reply_error(res, e);  // logged with the other error replies
    if (e.status() == 503) res.set_header("Retry-After", "1");
    return;
  }
  const Job& job = pending->job;
  pending->header =
      ReplyHeader{endpoint, make_reply_id(endpoint, random()),
                  static_cast<int64_t>(std::time(nullptr)), job.model, job.path.canonical()};
  if (job.stream) res.set_header("Cache-Control", "no-cache");

  // The reply is produced inside the content provider, which runs on this connection's thread
  // after the handler returns: there the connection can be written to, and so watched.
  res.set_chunked_content_provider(
      // "; charset=utf-8" also keeps httplib from compressing the body: a compressor holds the
      // heartbeat bytes back, and with them the news that the client has gone.
      job.stream ? "text/event-stream" : "application/json; charset=utf-8",
      [this, pending, path = req.path](size_t, httplib::DataSink& sink) {
        // Nothing may escape into httplib's thread: it would end the process.
        try {
          return write_reply(*pending, path, sink);
        } catch (...) {
          return false;
        }
      });
}

namespace {
// An error met after the status line went out: it can only travel in the body (as an SSE event
// in a stream), where OpenAI clients look for an "error" object.
void write_error_body(ReplyWriter& out, bool stream, const ApiError& err) {
  if (stream) {
    out.write(sse_event(error_json(err)));
    out.write(kSseDone);
  } else {
    out.write(dump(error_json(err)));
  }
}
}  // namespace

bool Server::Impl::out_of_time(const PendingReply& p) const {
  const auto limit = opts.request_timeout;
  return limit.count() > 0 && Clock::now() - p.received >= limit;
}

std::unique_ptr<SlotPool::Lease> Server::Impl::wait_for_slot(PendingReply& p,
                                                             const std::string& path,
                                                             ReplyWriter& out) {
  auto lease = p.reservation->acquire([&] { return out.alive() && !out_of_time(p); });
  if (!lease && out.alive()) {
    ++n_timed_out;
    log(fmt::format("POST {} timed out while queued", path));
    throw ApiError(503,
                   fmt::format("The request waited longer than the server's limit of {} ms for a "
                               "free slot; retry later",
                               opts.request_timeout.count()),
                   "", "timeout");
  }
  if (!lease) {
    ++n_cancelled;
    log(fmt::format("POST {} cancelled while queued", path));
  }
  return lease;
}

bool Server::Impl::write_reply(PendingReply& p, const std::string& path, httplib::DataSink& sink) {
  const Job& job = p.job;
  ReplyWriter out(sink, job.stream, opts.heartbeat, stopping);
  try {
    auto lease = wait_for_slot(p, path, out);
    if (!lease) return false;
    Session& session = lease->session();
    const bool done = job.endpoint == Endpoint::Completions && !job.stream
                          ? write_completions(p, path, out, session, lease->index())
                          : write_generation(p, path, out, session, lease->index());
    if (!done) return false;  // the client went away
  } catch (const ApiError& err) {
    // The status line is already out; the error goes in the body instead.
    write_error_body(out, job.stream, err);
  } catch (const std::exception& e) {
    log(fmt::format("POST {} failed: {}", path, e.what()));
    write_error_body(out, job.stream, ApiError(500, e.what()));
  }
  sink.done();
  return true;
}

bool Server::Impl::write_generation(PendingReply& p, const std::string& path, ReplyWriter& out,
                                    Session& session, int slot) {
  const Job& job = p.job;
  const ReplyHeader& h = p.header;
  const Tokenizer* tok = model.tokenizer();
  const bool want_logprobs = job.gen.logprobs >= 0;
  const UsageField usage = job.include_usage ? UsageField::Null : UsageField::Omit;
  const JobPrompt& prompt = job.prompts.at(0);  // a stream or a chat reply has one
  PromptPath pp = start_prompt(job, prompt, session, slot);
  p.header.layer_path = pp.path.canonical();
  p.header.route = std::move(pp.route);
  const size_t text_base = prompt.text ? prompt.text->size() : 0;
  std::vector<GeneratedToken> collected;
  if (job.stream && job.endpoint == Endpoint::ChatCompletions)
    out.write(sse_event(stream_chunk(h, {.first = true}, usage)));
  auto on_chunk = [&](const GenerationChunk& c) {
    if (!job.stream) {
      if (want_logprobs) collected.insert(collected.end(), c.tokens.begin(), c.tokens.end());
      return out.alive();
    }
    const json lp =
        want_logprobs ? logprobs_json(job.endpoint, c.tokens, tok, text_base) : json(nullptr);
    return out.write(sse_event(stream_chunk(h, {.text = c.text, .logprobs = lp}, usage)));
  };
  GenerationResult r = generate(session, tok, prompt.tokens, job.gen, on_chunk,
                                [&] { return !out.alive() || out_of_time(p); });
  const double secs = std::chrono::duration<double>(Clock::now() - p.received).count();
  if (r.finish == FinishReason::Cancelled && out.alive() && out_of_time(p)) {
    // Out of time, not out of client: the reply ends normally, and says why it ended.
    ++n_timed_out;
    log(fmt::format("POST {} reached the {} ms request limit after {} tokens", path,
                    opts.request_timeout.count(), r.completion_tokens));
    r.finish = FinishReason::Timeout;
  }
  if (r.finish == FinishReason::Cancelled) {
    ++n_cancelled;
    log(fmt::format("POST {} cancelled after {} tokens ({:.3f} s)", path, r.completion_tokens,
                    secs));
    return false;
  }
  if (job.stream) {
    out.write(sse_event(stream_chunk(h, {.finish = r.finish}, usage)));
    if (job.include_usage)
      out.write(sse_event(usage_chunk(h, r.prompt_tokens, r.completion_tokens)));
    out.write(kSseDone);
  } else {
    const json lp =
        want_logprobs ? logprobs_json(job.endpoint, collected, tok, text_base) : json(nullptr);
    out.write(dump(completion_reply(h, r, lp)));
  }
  log(fmt::format("POST {} 200 model={} path={}{} prompt={} completion={} finish={} {:.3f} s", path,
                  job.model, h.layer_path, route_note(h.route), r.prompt_tokens,
                  r.completion_tokens, finish_reason_text(r.finish), secs));
  return true;
}

namespace {

// A completions prompt echoed: its text (as sent, or its tokens' texts) and its tokens, with
// `logprobs` >= 0 scored from the logits before each (the session has then run the prompt).
struct Echo {
  std::vector<ScoredToken> scored;
  std::string text;
};

Echo echo_prompt(const JobPrompt& prompt, Session& session, const Tokenizer* tok, int logprobs) {
  Echo e;
  if (logprobs >= 0) {
    e.scored = score_prompt(session, prompt.tokens, logprobs);
  } else {
    e.scored.resize(prompt.tokens.size());
    for (size_t k = 0; k < e.scored.size(); ++k) e.scored[k].id = prompt.tokens[k];
  }
  e.scored.erase(e.scored.begin(), e.scored.begin() + static_cast<std::ptrdiff_t>(prompt.n_hidden));
  size_t offset = 0;
  for (ScoredToken& t : e.scored) {
    t.text_offset = offset;
    offset += token_text(tok ? tok->token_to_piece(t.id) : std::string()).size();
  }
  if (prompt.text) {
    e.text = *prompt.text;
  } else {
    for (const ScoredToken& t : e.scored)
      e.text += token_text(tok ? tok->token_to_piece(t.id) : std::string());
  }
  return e;
}

}  // namespace

bool Server::Impl::write_completions(PendingReply& p, const std::string& path, ReplyWriter& out,
                                     Session& session, int slot) {
  const Job& job = p.job;
  std::vector<CompletionChoice> choices;
  bool timed_out = false;
  for (const JobPrompt& prompt : job.prompts) {
    CompletionChoice c;
    c.prompt_tokens = static_cast<int>(prompt.tokens.size());
    if (timed_out) {  // the prompts after the one that ran out of time are not started
      c.finish = FinishReason::Timeout;
    } else if (!complete_prompt(p, prompt, path, out, session, slot, c)) {
      return false;
    }
    timed_out = timed_out || c.finish == FinishReason::Timeout;
    choices.push_back(std::move(c));
  }
  if (job.routed) {
    // The reply names the chosen path when every prompt took the same one; otherwise "auto",
    // and each choice names its own.
    p.header.layer_path = choices.front().layer_path;
    p.header.route = choices.front().route;
    for (const CompletionChoice& c : choices)
      if (c.route != p.header.route) {
        p.header.layer_path = std::string(kRoutedPath);
        p.header.route = nullptr;
      }
  }
  out.write(dump(completions_reply(p.header, choices)));
  int n_prompt = 0, n_completion = 0;
  for (const CompletionChoice& c : choices) {
    n_prompt += c.prompt_tokens;
    n_completion += c.completion_tokens;
  }
  log(fmt::format(
      "POST {} 200 model={} path={}{} prompts={} prompt={} completion={} echo={} {:.3f} s", path,
      job.model, p.header.layer_path, route_note(p.header.route), choices.size(), n_prompt,
      n_completion, job.echo, std::chrono::duration<double>(Clock::now() - p.received).count()));
  return true;
}

bool Server::Impl::complete_prompt(PendingReply& p, const JobPrompt& prompt,
                                   const std::string& path, ReplyWriter& out, Session& session,
                                   int slot, CompletionChoice& c) {
  const Job& job = p.job;
  const Tokenizer* tok = model.tokenizer();
  const bool want_logprobs = job.gen.logprobs >= 0;
  PromptPath pp = start_prompt(job, prompt, session, slot);
  if (job.routed) {
    c.layer_path = pp.path.canonical();
    c.route = std::move(pp.route);
  }
  Echo echo;
  if (job.echo) echo = echo_prompt(prompt, session, tok, job.gen.logprobs);
  // Echoed with logprobs, the prompt has run: generate() is fed only its last token.
  std::span<const int32_t> rest = prompt.tokens;
  if (job.echo && want_logprobs) rest = rest.last(1);
  std::vector<GeneratedToken> generated;
  GenerationResult r;
  if (job.echo && job.gen.max_tokens == 0) {
    r.finish = FinishReason::Length;  // scoring only: the last prompt token need not run
  } else {
    r = generate(
        session, tok, rest, job.gen,
        [&](const GenerationChunk& ch) {
          if (want_logprobs) generated.insert(generated.end(), ch.tokens.begin(), ch.tokens.end());
          return out.alive();
        },
        [&] { return !out.alive() || out_of_time(p); });
  }
  if (r.finish == FinishReason::Cancelled && out.alive() && out_of_time(p)) {
    ++n_timed_out;
    log(fmt::format("POST {} reached the {} ms request limit", path, opts.request_timeout.count()));
    r.finish = FinishReason::Timeout;
  }
  if (r.finish == FinishReason::Cancelled) {
    ++n_cancelled;
    log(fmt::format("POST {} cancelled", path));
    return false;
  }
  c.text = echo.text + r.text;
  c.finish = r.finish;
  c.completion_tokens = r.completion_tokens;
  if (!want_logprobs) {
    c.logprobs = nullptr;
  } else if (!job.echo) {
    c.logprobs = logprobs_json(job.endpoint, generated, tok, prompt.text ? prompt.text->size() : 0);
  } else {
    auto add = [&](const GeneratedToken& g, size_t text_offset) {
      ScoredToken t;
      t.id = g.id;
      t.text_offset = text_offset;
      t.logprob = g.logprob;
      for (const TokenLogprob& alt : g.top) t.top.emplace_back(alt.token, alt.logprob);
      echo.scored.push_back(std::move(t));
    };
    for (const GeneratedToken& g : generated) add(g, echo.text.size() + g.text_offset);
    // The token that ended generation is listed too (with empty text), as OpenAI's echo does:
    // a client reading "the prompt, then the one sampled token" must find that token there.
    if (r.end_token) add(*r.end_token, c.text.size());
    c.logprobs = scored_logprobs_json(echo.scored, tok);
  }
  return true;
}

Server::Server(const Model& model, const ServerOptions& opts)
    : impl_(std::make_unique<Impl>(model, opts)) {}

Server::~Server() {
  stop();
}

int Server::bind() {
  if (impl_->port >= 0) return impl_->port;
  const ServerOptions& o = impl_->opts;
  if (o.port < 0 || o.port > 65535) throw Error(fmt::format("--port {} is out of range", o.port));
  errno = 0;
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
  } else if (impl_->http.bind_to_port(o.host, o.port)) {
    impl_->port = o.port;
  }
  if (impl_->port <= 0) {
    const int err = errno;
    impl_->port = -1;
    if (err == EADDRINUSE)
      throw Error(
          fmt::format("cannot listen on {}:{}: port {} is already in use (another server "
                      "is running there; choose another --port)",
                      o.host, o.port, o.port));
    throw Error(fmt::format("cannot listen on {}:{}{}", o.host, o.port,
                            err ? ": " + std::string(std::strerror(err)) : std::string()));
  }
  impl_->http.enlarge_backlog(SOMAXCONN);
  return impl_->port;
}

void Server::run() {
  bind();
  impl_->http.listen_after_bind();
}

int Server::start() {
  const int p = bind();
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  return p;
}

void Server::stop() {
  if (!impl_) return;
  impl_->stopping = true;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const {
  return impl_->port;
}
const ServedModel& Server::served() const {
  return impl_->served;
}
SlotStats Server::slot_stats() const {
  return impl_->slots->stats();
}
uint64_t Server::cancelled_requests() const {
  return impl_->n_cancelled.load();
}
uint64_t Server::timed_out_requests() const {
  return impl_->n_timed_out.load();
}

}  // namespace reprise::serve
