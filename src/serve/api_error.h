// Errors a request can end in, carried to the HTTP boundary and written in OpenAI's error shape:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace reprise::serve {

class ApiError : public std::runtime_error {
 public:
  // `param` names the offending request field ("" = none); `code` is OpenAI's machine-readable
  // code ("" = null). The type follows from the status unless given.
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "",
           std::string type = "");

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string param_, code_, type_;
};

// The JSON body for an error reply.
nlohmann::ordered_json error_json(const ApiError& e);

}  // namespace reprise::serve
