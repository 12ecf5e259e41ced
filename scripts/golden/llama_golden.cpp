// Golden reference dumper against libllama (reference llama.cpp, not part of reprise).
// 1 thread, F32 KV, no flash attention, no weight repacking; whole prompt in one batch with
// logits for every position; then greedy decode one token at a time.
#include "llama.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void print_floats(const float* p, int n) {
  std::printf("[");
  for (int i = 0; i < n; ++i) std::printf(i ? ",%.6g" : "%.6g", (double)p[i]);
  std::printf("]");
}
static void json_str(const char* s) {
  std::printf("\"");
  for (; *s; ++s) {
    unsigned char c = *s;
    if (c == '"' || c == '\\') std::printf("\\%c", c);
    else if (c < 0x20) std::printf("\\u%04x", c);
    else std::printf("%c", c);
  }
  std::printf("\"");
}

int main(int argc, char** argv) {
  std::string model, prompt, tokens_arg, name;
  bool have_prompt = false, bos = true, special = false, tok_only = false;
  int n_greedy = 16, n_ctx = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { if (i + 1 >= argc) { std::fprintf(stderr, "missing value for %s\n", a.c_str()); std::exit(2);} return argv[++i]; };
    if (a == "-m") model = next();
    else if (a == "-p") { prompt = next(); have_prompt = true; }
    else if (a == "-f") { std::string f = next(); FILE* fp = std::fopen(f.c_str(), "rb"); if (!fp) { std::perror(f.c_str()); return 2; } char b[4096]; size_t k; while ((k = std::fread(b,1,sizeof b,fp))>0) prompt.append(b,k); std::fclose(fp); have_prompt = true; }
    else if (a == "--tokens") tokens_arg = next();
    else if (a == "--no-bos") bos = false;
    else if (a == "--special") special = true;
    else if (a == "--tokenize-only") tok_only = true;
    else if (a == "-n") n_greedy = std::atoi(next().c_str());
    else if (a == "--name") name = next();
    else if (a == "-c") n_ctx = std::atoi(next().c_str());
    else { std::fprintf(stderr, "unknown arg %s\n", a.c_str()); return 2; }
  }
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  auto mp = llama_model_default_params();
  mp.use_extra_bufts = false;
  mp.vocab_only = tok_only;
  llama_model* m = llama_model_load_from_file(model.c_str(), mp);
  if (!m) { std::fprintf(stderr, "cannot load %s\n", model.c_str()); return 1; }
  const llama_vocab* vocab = llama_model_get_vocab(m);
  std::vector<llama_token> toks;
  if (!tokens_arg.empty()) {
    size_t pos = 0;
    while (pos < tokens_arg.size()) { size_t c = tokens_arg.find(',', pos); if (c == std::string::npos) c = tokens_arg.size(); toks.push_back(std::atoi(tokens_arg.substr(pos, c - pos).c_str())); pos = c + 1; }
  } else if (have_prompt) {
    int n = -llama_tokenize(vocab, prompt.data(), (int)prompt.size(), nullptr, 0, bos, special);
    toks.resize(n > 0 ? n : 0);
    if (n > 0) llama_tokenize(vocab, prompt.data(), (int)prompt.size(), toks.data(), n, bos, special);
  }
  if (tok_only) {
    std::printf("{\"ids\":[");
    for (size_t i = 0; i < toks.size(); ++i) std::printf(i ? ",%d" : "%d", toks[i]);
    std::printf("]}\n");
    return 0;
  }
  auto cp = llama_context_default_params();
  // -c: the context whose size long-rope models choose their factors by (llama.cpp rounds it
  // up to a multiple of 256; the JSON records the per-sequence context it used).
  cp.n_ctx = n_ctx > 0 ? n_ctx : std::max<int>(512, (int)toks.size() + n_greedy + 8);
  cp.n_batch = cp.n_ubatch = std::max<int>(512, (int)toks.size());
  cp.n_threads = cp.n_threads_batch = 1;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(m, cp);
  if (!ctx) { std::fprintf(stderr, "no context\n"); return 1; }
  const int nv = llama_vocab_n_tokens(vocab);
  llama_batch b = llama_batch_init((int)toks.size(), 0, 1);
  for (size_t i = 0; i < toks.size(); ++i) {
    b.token[i] = toks[i]; b.pos[i] = (int)i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
  }
  b.n_tokens = (int)toks.size();
  if (llama_decode(ctx, b)) { std::fprintf(stderr, "decode failed\n"); return 1; }
  std::printf("{\"name\":"); json_str(name.c_str());
  std::printf(",\"model_file\":"); json_str(model.c_str());
  std::printf(",\"n_vocab\":%d,\"n_layer_file\":%d,\"n_embd\":%d,\"kv_cache_type\":\"f32\",\"n_threads\":1,\"reference\":\"llama.cpp 0c1e570 (llama-cpp-python 0.3.36 sdist)\"", nv, llama_model_n_layer(m), llama_model_n_embd(m));
  std::printf(",\"n_ctx\":%u", llama_n_ctx_seq(ctx));
  std::printf(",\"prompt_tokens\":[");
  for (size_t i = 0; i < toks.size(); ++i) std::printf(i ? ",%d" : "%d", toks[i]);
  std::printf("],\"logits_all\":[");
  for (size_t i = 0; i < toks.size(); ++i) { if (i) std::printf(","); print_floats(llama_get_logits_ith(ctx, (int)i), nv); }
  std::printf("],\"logits_last\":");
  print_floats(llama_get_logits_ith(ctx, (int)toks.size() - 1), nv);
  std::vector<int> greedy; std::vector<float> gmax;
  const float* lg = llama_get_logits_ith(ctx, (int)toks.size() - 1);
  int pos = (int)toks.size();
  for (int s = 0; s < n_greedy; ++s) {
    int best = 0; for (int j = 1; j < nv; ++j) if (lg[j] > lg[best]) best = j;
    greedy.push_back(best); gmax.push_back(lg[best]);
    if (s + 1 == n_greedy) break;
    llama_batch one = llama_batch_init(1, 0, 1);
    one.token[0] = best; one.pos[0] = pos++; one.n_seq_id[0] = 1; one.seq_id[0][0] = 0; one.logits[0] = 1; one.n_tokens = 1;
    if (llama_decode(ctx, one)) { std::fprintf(stderr, "decode failed\n"); return 1; }
    llama_batch_free(one);
    lg = llama_get_logits_ith(ctx, 0);
  }
  std::printf(",\"greedy_tokens\":[");
  for (size_t i = 0; i < greedy.size(); ++i) std::printf(i ? ",%d" : "%d", greedy[i]);
  std::printf("],\"greedy_max_logit\":");
  print_floats(gmax.data(), (int)gmax.size());
  std::printf("}\n");
  llama_batch_free(b);
  llama_free(ctx); llama_model_free(m);
  return 0;
}
