// Command-line options for every `vireo` subcommand: declared once, parsed, and turned into the
// --help text (and the man page) from the same declarations, so help never drifts from behaviour.
//
//   OptionParser p("vireo bench ring", "Ring micro-benchmark: driver and device halves on one buffer.");
//   auto& layout = p.add_choice("layout", {"split", "packed"}, "split", "ring layout: split|packed");
//   auto& json   = p.flag("json", "print one JSON line instead of a table");
//   if (auto rc = p.parse(argc, argv)) return *rc;   // printed help or an error
//   use(layout.value, json.set);
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace vireo {

struct Option {
  std::string name;
  std::string value;     // current value (default until parsed)
  std::string fallback;  // the default, for --help
  std::string help;
  bool is_flag = false;
  bool set = false;      // given on the command line (flags: present)
  std::vector<std::string> choices;  // add_choice(): the only values parse() accepts

  // Typed views; parse errors are reported by OptionParser::parse via the validators below.
  std::uint64_t as_u64() const;
  double as_double() const;
};

class OptionParser {
 public:
  OptionParser(std::string usage, std::string summary);

  Option& add(std::string name, std::string fallback, std::string help);
  Option& flag(std::string name, std::string help);
  // Marks an option as numeric so parse() rejects non-numbers with a clear message.
  Option& add_u64(std::string name, std::uint64_t fallback, std::string help);
  // An option with a fixed set of values ("split|packed", "on|off"): parse() rejects anything
  // else with a message that lists them, so commands only compare value against a choice.
  Option& add_choice(std::string name, std::vector<std::string> choices, std::string fallback, std::string help);

  // Parses argv[first..argc). Returns nullopt to continue, or an exit code: 0 after printing
  // --help, 2 after an error (message on stderr). Unknown options and stray arguments are errors.
  std::optional<int> parse(int argc, char** argv, int first = 1);

  std::string help_text() const;
  // The same text as a roff man-page section (used by `vireo man`).
  std::string man_text() const;

 private:
  std::string usage_;
  std::string summary_;
  std::deque<Option> options_;  // stable addresses for the returned references
  std::vector<std::string> numeric_;
};

// Splits "a,b" / parses "52:54:00:12:34:56" style helpers shared by commands.
bool parse_u64(const std::string& s, std::uint64_t& out);

}  // namespace vireo
