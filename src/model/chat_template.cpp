#include "model/chat_template.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <initializer_list>
#include <string_view>

#include "util/error.h"

namespace reprise {
namespace {

std::string trim(std::string_view s) {
  constexpr std::string_view kWs = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(kWs) - b + 1));
}

// Joins parts with one allocation. (Chains of `"literal" + std::string` also trip a GCC 12
// -Wrestrict false positive in optimised builds.)
std::string cat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (std::string_view p : parts) out += p;
  return out;
}

void check_role(const std::string& family, const ChatMessage& m) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant")
    throw Error(fmt::format("chat template {}: unsupported role \"{}\" (system, user, assistant)",
                            family, m.role));
}

std::string format_chatml(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string out;
  for (const ChatMessage& m : msgs)
    out += cat({"<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n"});
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

std::string format_llama3(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string out;
  for (const ChatMessage& m : msgs)
    out += cat(
        {"<|start_header_id|>", m.role, "<|end_header_id|>\n\n", trim(m.content), "<|eot_id|>"});
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Families where system text rides in the next user turn. `user_turn` gets the pending system
// text (possibly empty) and the user content; a trailing system message with no user turn after
// it still becomes a user turn, so it is not lost.
template <typename UserFn, typename AssistantFn>
std::string fold_system(const std::string& family, const std::vector<ChatMessage>& msgs,
                        UserFn user_turn, AssistantFn assistant_turn) {
  std::string out, system;
  bool first_user = true;
  for (const ChatMessage& m : msgs) {
    check_role(family, m);
    if (m.role == "system") {
      if (!system.empty()) system += "\n\n";
      system += m.content;
    } else if (m.role == "user") {
      out += user_turn(system, m.content, first_user);
      system.clear();
      first_user = false;
    } else {
      out += assistant_turn(m.content);
    }
  }
  if (!system.empty()) out += user_turn(system, "", first_user);
  return out;
}

// Meta's Llama 2 chat format; each later user turn reopens a sequence with <s>.
std::string format_llama2(const std::vector<ChatMessage>& msgs, bool) {
  return fold_system(
      "llama2", msgs,
      [](const std::string& sys, const std::string& user, bool first) {
        const std::string sys_block = sys.empty() ? "" : cat({"<<SYS>>\n", sys, "\n<</SYS>>\n\n"});
        return cat({first ? "[INST] " : "<s>[INST] ", sys_block, trim(user), " [/INST]"});
      },
      [](const std::string& a) {
        return cat({" ", trim(a), " </s>"});
      });
}

// Mistral Instruct (v0.1/v0.2): no system role, no BOS between turns.
std::string format_mistral(const std::vector<ChatMessage>& msgs, bool) {
  return fold_system(
      "mistral", msgs,
      [](const std::string& sys, const std::string& user, bool) {
        return cat({"[INST] ", sys, sys.empty() ? "" : "\n\n", user, " [/INST]"});
      },
      [](const std::string& a) {
        return cat({a, "</s>"});
      });
}

// Gemma: the assistant is called "model", and there is no system role.
std::string format_gemma(const std::vector<ChatMessage>& msgs, bool gen) {
  std::string out = fold_system(
      "gemma", msgs,
      [](const std::string& sys, const std::string& user, bool) {
        return cat({"<start_of_turn>user\n", trim(sys), sys.empty() ? "" : "\n\n", trim(user),
                    "<end_of_turn>\n"});
      },
      [](const std::string& a) {
        return cat({"<start_of_turn>model\n", trim(a), "<end_of_turn>\n"});
      });
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

using Formatter = std::string (*)(const std::vector<ChatMessage>&, bool);

const std::vector<std::pair<std::string, Formatter>>& formatters() {
  static const std::vector<std::pair<std::string, Formatter>> f = {
      {"chatml", format_chatml},   {"llama3", format_llama3}, {"llama2", format_llama2},
      {"mistral", format_mistral}, {"gemma", format_gemma},
  };
  return f;
}

}  // namespace

const std::vector<std::string>& chat_template_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, fn] : formatters()) n.push_back(name);
    return n;
  }();
  return names;
}

std::string format_chat(const std::string& family, const std::vector<ChatMessage>& msgs,
                        bool add_generation_prompt) {
  for (const auto& [name, fn] : formatters())
    if (name == family) return fn(msgs, add_generation_prompt);
  throw Error(fmt::format("unknown chat template \"{}\" (known: {})", family,
                          fmt::join(chat_template_families(), ", ")));
}

std::optional<std::string> detect_chat_template(const std::string& src) {
  auto has = [&](const char* marker) { return src.find(marker) != std::string::npos; };
  if (has("<|im_start|>")) return "chatml";
  if (has("<|start_header_id|>")) return "llama3";
  if (has("<start_of_turn>")) return "gemma";
  // Llama 2 and Mistral share [INST]; only Llama 2 has a <<SYS>> block.
  if (has("[INST]")) return has("<<SYS>>") ? "llama2" : "mistral";
  return std::nullopt;
}

std::optional<std::string> default_system_message(const std::string& src) {
  // Only the plain form: a literal system turn guarded by a test that the first message is not
  // a system message. Anything fancier (variables, date strings) is left alone.
  if (src.find("!= 'system'") == std::string::npos &&
      src.find("!= \"system\"") == std::string::npos)
    return std::nullopt;
  // The newline after the role is a real one in some files and a Jinja escape in others.
  for (std::string_view open : {"<|im_start|>system\n", "<|im_start|>system\\n"}) {
    const size_t at = src.find(open);
    if (at == std::string::npos) continue;
    const size_t begin = at + open.size();
    const size_t end = src.find("<|im_end|>", begin);
    if (end == std::string::npos) return std::nullopt;
    std::string text = src.substr(begin, end - begin);
    if (text.empty() || text.find_first_of("{}'\"\\") != std::string::npos) return std::nullopt;
    return text;
  }
  return std::nullopt;
}

}  // namespace reprise
