#include "serve/api_error.h"

namespace reprise::serve {
namespace {

std::string default_type(int status) {
  if (status >= 500) return "server_error";
  return "invalid_request_error";  // what OpenAI uses for 400, 401, 404 and 413 alike
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code,
                   std::string type)
    : std::runtime_error(message),
      status_(status),
      param_(std::move(param)),
      code_(std::move(code)),
      type_(type.empty() ? default_type(status) : std::move(type)) {}

nlohmann::ordered_json error_json(const ApiError& e) {
  using json = nlohmann::ordered_json;
  return json{{"error",
               {{"message", e.what()},
                {"type", e.type()},
                {"param", e.param().empty() ? json(nullptr) : json(e.param())},
                {"code", e.code().empty() ? json(nullptr) : json(e.code())}}}};
}

}  // namespace reprise::serve
