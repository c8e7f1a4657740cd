#include "base/json_line.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace vireo {

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void JsonLine::key(std::string_view k) {
  if (body_.size() > 1) body_ += ",";
  body_ += json_quote(k) + ":";
}

JsonLine& JsonLine::str(std::string_view k, std::string_view value) {
  key(k);
  body_ += json_quote(value);
  return *this;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 1000 ? "%.1f" : "%.6g", v);
  return buf;
}

JsonLine& JsonLine::num(std::string_view k, double value) {
  key(k);
  body_ += json_number(value);
  return *this;
}

JsonLine& JsonLine::integer(std::string_view k, long long value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::hex(std::string_view k, unsigned long long value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", value);
  return str(k, buf);
}

void JsonLine::print(std::FILE* out) const {
  std::fprintf(out, "%s\n", text().c_str());
  std::fflush(out);
}

JsonLine& JsonLine::boolean(std::string_view k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

std::string JsonObject::string(std::string_view key, std::string fallback) const {
  auto it = fields.find(key);
  if (it == fields.end() || !std::holds_alternative<std::string>(it->second)) return fallback;
  return std::get<std::string>(it->second);
}

double JsonObject::number(std::string_view key, double fallback) const {
  auto it = fields.find(key);
  if (it == fields.end() || !std::holds_alternative<double>(it->second)) return fallback;
  return std::get<double>(it->second);
}

bool JsonObject::flag(std::string_view key, bool fallback) const {
  auto it = fields.find(key);
  if (it == fields.end() || !std::holds_alternative<bool>(it->second)) return fallback;
  return std::get<bool>(it->second);
}

std::string to_json_text(const JsonObject& o) {
  std::string out = "{";
  for (const auto& [k, v] : o.fields) {
    if (out.size() > 1) out += ",";
    out += json_quote(k) + ":";
    if (const auto* s = std::get_if<std::string>(&v)) out += json_quote(*s);
    else if (const auto* d = std::get_if<double>(&v)) out += json_number(*d);
    else if (const auto* b = std::get_if<bool>(&v)) out += *b ? "true" : "false";
    else out += "null";
  }
  return out + "}";
}

namespace {

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  Expected<JsonObject, std::string> object() {
    JsonObject obj;
    skip();
    if (!eat('{')) return error("expected '{'");
    skip();
    if (eat('}')) return end(std::move(obj));
    for (;;) {
      skip();
      auto k = string();
      if (!k) return Unexpected(k.error());
      skip();
      if (!eat(':')) return error("expected ':' after key \"" + *k + "\"");
      skip();
      auto v = value(*k);
      if (!v) return Unexpected(v.error());
      obj.fields[*k] = std::move(*v);
      skip();
      if (eat('}')) return end(std::move(obj));
      if (!eat(',')) return error("expected ',' or '}'");
    }
  }

 private:
  Expected<JsonObject, std::string> end(JsonObject obj) {
    skip();
    if (i_ != s_.size()) return error("text after the closing '}'");
    return obj;
  }
  Unexpected<std::string> error(const std::string& what) const {
    return Unexpected("column " + std::to_string(i_ + 1) + ": " + what);
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  Expected<std::string, std::string> string() {
    if (!eat('"')) return error("expected a string");
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      if (e == 'n') out += '\n';
      else if (e == 't') out += '\t';
      else if (e == 'r') out += '\r';
      else if (e == 'b') out += '\b';
      else if (e == 'f') out += '\f';
      else if (e == 'u') {
        if (i_ + 4 > s_.size()) return error("short \\u escape");
        unsigned long cp = std::strtoul(std::string(s_.substr(i_, 4)).c_str(), nullptr, 16);
        i_ += 4;
        out += cp < 0x80 ? static_cast<char>(cp) : '?';  // results never carry non-ASCII
      } else {
        out += e;  // \" \\ \/
      }
    }
    if (!eat('"')) return error("unterminated string");
    return out;
  }

  Expected<JsonObject::Value, std::string> value(const std::string& key) {
    if (i_ >= s_.size()) return error("missing value for \"" + key + "\"");
    char c = s_[i_];
    if (c == '"') {
      auto s = string();
      if (!s) return Unexpected(s.error());
      return JsonObject::Value(std::move(*s));
    }
    if (word("true")) return JsonObject::Value(true);
    if (word("false")) return JsonObject::Value(false);
    if (word("null")) return JsonObject::Value(nullptr);
    if (c == '{' || c == '[') return error("\"" + key + "\" is nested; only flat objects are read");
    std::string num(s_.substr(i_, s_.find_first_of(",} \t", i_) - i_));
    char* endp = nullptr;
    double d = std::strtod(num.c_str(), &endp);
    if (num.empty() || endp != num.c_str() + num.size()) return error("bad value for \"" + key + "\"");
    i_ += num.size();
    return JsonObject::Value(d);
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

Expected<JsonObject, std::string> parse_json_line(std::string_view line) { return Reader(line).object(); }

}  // namespace vireo
