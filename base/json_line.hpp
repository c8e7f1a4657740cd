// JSON lines, the output format of every measuring command (vireo bench ..., vireo driver net):
// a writer for one flat object per line, and a reader of such lines for `vireo bench report`.
// Flat means string, number, boolean and null values only; that is all the commands print.
//
//   JsonLine().str("impl", "dpdk").boolean("event_idx", false).num("pps", 3.1e6).print(stdout);
//   auto obj = parse_json_line(R"({"impl":"dpdk","pps":3100000})");   // Expected<JsonObject, std::string>
//   double pps = obj->number("pps");
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "base/expected.hpp"

namespace vireo {

class JsonLine {
 public:
  JsonLine& str(std::string_view key, std::string_view value);
  JsonLine& num(std::string_view key, double value);
  JsonLine& integer(std::string_view key, long long value);
  JsonLine& boolean(std::string_view key, bool value);
  JsonLine& hex(std::string_view key, unsigned long long value);  // "0x..." as a string
  std::string text() const { return body_ + "}"; }  // without a newline
  // Writes text() and a newline to `out` and flushes it (a reader may be waiting for the line).
  void print(std::FILE* out) const;

 private:
  void key(std::string_view k);
  std::string body_ = "{";
};

// A JSON string literal (quotes included) with the required escapes.
std::string json_quote(std::string_view s);
// A JSON number ("null" for NaN or infinity).
std::string json_number(double v);

struct JsonObject {
  using Value = std::variant<std::nullptr_t, bool, double, std::string>;
  std::map<std::string, Value, std::less<>> fields;

  bool has(std::string_view key) const { return fields.find(key) != fields.end(); }
  // Typed reads with a fallback when the key is missing or of another type.
  std::string string(std::string_view key, std::string fallback = "") const;
  double number(std::string_view key, double fallback = 0) const;
  bool flag(std::string_view key, bool fallback = false) const;
};

// The object as one JSON line (keys sorted).
std::string to_json_text(const JsonObject& o);
// Parses one flat JSON object; nested objects/arrays are an error that names the key.
Expected<JsonObject, std::string> parse_json_line(std::string_view line);

}  // namespace vireo
