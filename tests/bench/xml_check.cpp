#include "xml_check.hpp"

#include <set>
#include <vector>

namespace vireo::bench::test {
namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == ':' || c == '.';
}

class Checker {
 public:
  explicit Checker(std::string_view s) : s_(s) {}

  std::string run() {
    if (s_.substr(0, 5) == "<?xml") {
      i_ = s_.find("?>");
      if (i_ == std::string_view::npos) return at("unterminated XML declaration");
      i_ += 2;
    }
    int roots = 0;
    while (i_ < s_.size()) {
      if (s_[i_] == '<') {
        if (stack_.empty() && (i_ + 1 >= s_.size() || s_[i_ + 1] != '/')) ++roots;
        if (auto e = tag(); !e.empty()) return e;
      } else {
        if (stack_.empty() && s_[i_] != '\n' && s_[i_] != ' ') return at("text outside the root element");
        if (auto e = text_char(); !e.empty()) return e;
      }
    }
    if (!stack_.empty()) return at("<" + stack_.back() + "> is never closed");
    if (roots != 1) return at("expected exactly one root element, found " + std::to_string(roots));
    return "";
  }

 private:
  std::string at(const std::string& what) const { return what + " (offset " + std::to_string(i_) + ")"; }

  std::string name(std::string& out) {
    std::size_t start = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    out = std::string(s_.substr(start, i_ - start));
    return out.empty() ? at("expected a name") : "";
  }
  void blanks() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  std::string entity() {
    std::size_t end = s_.find(';', i_);
    if (end == std::string_view::npos || end - i_ > 10) return at("bare '&'");
    std::string_view e = s_.substr(i_ + 1, end - i_ - 1);
    static const std::set<std::string_view> kNamed = {"amp", "lt", "gt", "quot", "apos"};
    if (!kNamed.count(e) && !(e.size() > 1 && e[0] == '#')) return at("unknown entity &" + std::string(e) + ";");
    i_ = end + 1;
    return "";
  }
  std::string text_char() {
    if (s_[i_] == '&') return entity();
    if (s_[i_] == '>') return at("'>' in text");
    ++i_;
    return "";
  }

  std::string attributes(std::set<std::string>& seen) {
    for (;;) {
      blanks();
      if (i_ >= s_.size()) return at("unterminated tag");
      if (s_[i_] == '>' || s_[i_] == '/') return "";
      std::string key;
      if (auto e = name(key); !e.empty()) return e;
      if (!seen.insert(key).second) return at("duplicate attribute " + key);
      if (i_ >= s_.size() || s_[i_] != '=') return at("attribute " + key + " without '='");
      ++i_;
      if (i_ >= s_.size() || s_[i_] != '"') return at("attribute " + key + " not quoted");
      ++i_;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '<') return at("'<' in attribute " + key);
        if (s_[i_] == '&') {
          if (auto e = entity(); !e.empty()) return e;
        } else {
          ++i_;
        }
      }
      if (i_ >= s_.size()) return at("unterminated attribute " + key);
      ++i_;
    }
  }

  std::string tag() {
    ++i_;
    bool closing = i_ < s_.size() && s_[i_] == '/';
    if (closing) ++i_;
    std::string n;
    if (auto e = name(n); !e.empty()) return e;
    if (closing) {
      blanks();
      if (i_ >= s_.size() || s_[i_] != '>') return at("bad closing tag </" + n);
      ++i_;
      if (stack_.empty() || stack_.back() != n) return at("</" + n + "> does not close the open element");
      stack_.pop_back();
      return "";
    }
    std::set<std::string> seen;
    if (auto e = attributes(seen); !e.empty()) return e;
    if (s_[i_] == '/') {
      if (i_ + 1 >= s_.size() || s_[i_ + 1] != '>') return at("bad self-closing tag <" + n);
      i_ += 2;
      return "";
    }
    ++i_;
    stack_.push_back(n);
    return "";
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::vector<std::string> stack_;
};

}  // namespace

std::string xml_problem(std::string_view xml) { return Checker(xml).run(); }

}  // namespace vireo::bench::test
