#include "model/tokenizer.h"

#include <algorithm>

#include "model/tokenizer_bpe.h"
#include "model/tokenizer_spm.h"
#include "util/error.h"

namespace reprise {

TokenIndex::TokenIndex(const std::vector<std::string>& tokens) {
  ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ids_[tokens[i]] = static_cast<int32_t>(i);
}

int32_t TokenIndex::find(std::string_view text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

SpecialTokenSplitter::SpecialTokenSplitter(const Vocab& vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenAttr a = vocab.attrs[id];
    if (vocab.tokens[id].empty()) continue;
    if (a == TokenAttr::Control || a == TokenAttr::Unknown || a == TokenAttr::UserDefined)
      specials_.push_back({vocab.tokens[id], id, a == TokenAttr::UserDefined});
  }
  // Stable, so that equally long texts keep id order and results do not depend on the sort.
  std::stable_sort(specials_.begin(), specials_.end(), [](const Special& x, const Special& y) {
    return x.text.size() > y.text.size();
  });
}

std::vector<PromptFragment> SpecialTokenSplitter::split(std::string_view text,
                                                        bool parse_special) const {
  std::vector<PromptFragment> frags;
  if (text.empty()) return frags;
  frags.push_back({text, -1});
  std::vector<PromptFragment> next;
  for (const Special& sp : specials_) {
    if (!sp.always && !parse_special) continue;
    // Cheap filter: most special texts do not occur in the prompt at all.
    if (text.find(sp.text) == std::string_view::npos) continue;
    next.clear();
    for (const PromptFragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = 0;
      for (size_t hit; (hit = f.text.find(sp.text, pos)) != std::string_view::npos;) {
        if (hit > pos) next.push_back({f.text.substr(pos, hit - pos), -1});
        next.push_back({{}, sp.id});
        pos = hit + sp.text.size();
      }
      if (pos < f.text.size()) next.push_back({f.text.substr(pos), -1});
    }
    frags.swap(next);
  }
  return frags;
}

std::unique_ptr<Tokenizer> make_tokenizer(Vocab vocab) {
  check_vocab(vocab, "tokenizer");
  switch (vocab.model) {
    case Vocab::Model::Spm:
      return std::make_unique<SpmTokenizer>(std::move(vocab));
    case Vocab::Model::Bpe:
      return std::make_unique<BpeTokenizer>(std::move(vocab));
    case Vocab::Model::None:
      break;
  }
  throw Error("tokenizer: the vocabulary has no tokenizer model (tokenizer.ggml.model is none)");
}

}  // namespace reprise
