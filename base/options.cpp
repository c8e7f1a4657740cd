#include "base/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vireo {

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno != 0 || end == s.c_str() || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

// What --help shows as the default: the value, "off" for a flag, "none" for an unset string.
static std::string default_text(const Option& o) {
  if (o.is_flag) return "off";
  return o.fallback.empty() ? "none" : o.fallback;
}

std::uint64_t Option::as_u64() const {
  std::uint64_t v = 0;
  parse_u64(value, v);
  return v;
}

double Option::as_double() const { return std::strtod(value.c_str(), nullptr); }

OptionParser::OptionParser(std::string usage, std::string summary)
    : usage_(std::move(usage)), summary_(std::move(summary)) {}

Option& OptionParser::add(std::string name, std::string fallback, std::string help) {
  options_.push_back(Option{name, fallback, fallback, std::move(help), false, false});
  return options_.back();
}

Option& OptionParser::flag(std::string name, std::string help) {
  options_.push_back(Option{std::move(name), "", "", std::move(help), true, false});
  return options_.back();
}

Option& OptionParser::add_u64(std::string name, std::uint64_t fallback, std::string help) {
  numeric_.push_back(name);
  return add(std::move(name), std::to_string(fallback), std::move(help));
}

Option& OptionParser::add_choice(std::string name, std::vector<std::string> choices, std::string fallback,
                                 std::string help) {
  Option& o = add(std::move(name), std::move(fallback), std::move(help));
  o.choices = std::move(choices);
  return o;
}

// "" when value is one of o's choices (or o has none), else the error text for parse().
static std::string choice_error(const Option& o) {
  if (o.choices.empty() || std::find(o.choices.begin(), o.choices.end(), o.value) != o.choices.end()) return "";
  std::string list;
  for (const std::string& c : o.choices) list += (list.empty() ? "" : "|") + c;
  return "--" + o.name + " wants " + list + ", got '" + o.value + "'";
}

std::optional<int> OptionParser::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_text().c_str(), stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      std::fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", usage_.c_str(), arg.c_str());
      return 2;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = std::find_if(options_.begin(), options_.end(),
                           [&](const Option& o) { return o.name == name; });
    if (it == options_.end()) {
      std::fprintf(stderr, "%s: unknown option --%s (see --help)\n", usage_.c_str(), name.c_str());
      return 2;
    }
    it->set = true;
    if (it->is_flag) {
      if (inline_value) {
        std::fprintf(stderr, "%s: --%s takes no value\n", usage_.c_str(), name.c_str());
        return 2;
      }
      continue;
    }
    if (inline_value) {
      it->value = *inline_value;
    } else if (i + 1 < argc) {
      it->value = argv[++i];
    } else {
      std::fprintf(stderr, "%s: --%s needs a value\n", usage_.c_str(), name.c_str());
      return 2;
    }
    if (std::find(numeric_.begin(), numeric_.end(), name) != numeric_.end()) {
      std::uint64_t v = 0;
      if (!parse_u64(it->value, v)) {
        std::fprintf(stderr, "%s: --%s wants a non-negative number, got '%s'\n", usage_.c_str(),
                     name.c_str(), it->value.c_str());
        return 2;
      }
    }
    if (const std::string e = choice_error(*it); !e.empty()) {
      std::fprintf(stderr, "%s: %s\n", usage_.c_str(), e.c_str());
      return 2;
    }
  }
  return std::nullopt;
}

std::string OptionParser::help_text() const {
  const bool has_options = usage_.find("[options]") != std::string::npos;
  std::string out = "usage: " + usage_ + (has_options ? "" : " [options]") + "\n\n" + summary_ + "\n\noptions:\n";
  for (const Option& o : options_) {
    std::string left = "  --" + o.name + (o.is_flag ? "" : " VALUE");
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    out += left + o.help + " (default: " + default_text(o) + ")\n";
  }
  out += "  --help                    print this help and exit\n";
  return out;
}

std::string OptionParser::man_text() const {
  std::string out = ".SS \"" + usage_ + "\"\n" + summary_ + "\n";
  for (const Option& o : options_) {
    out += ".TP\n.B --" + o.name + (o.is_flag ? "" : " \\fIVALUE\\fR") + "\n" + o.help + " (default: " +
           default_text(o) + ")\n";
  }
  return out;
}

}  // namespace vireo
