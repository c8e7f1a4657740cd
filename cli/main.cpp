// vireo: one CLI for devices, drivers, benchmarks and tests. See cli/commands.hpp for the table.
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "base/options.hpp"
#include "cli/bench_hooks.hpp"
#include "cli/commands.hpp"

namespace {

std::vector<std::string> split_words(const char* words) {
  std::istringstream in(words);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

void print_help() {
  std::puts("usage: vireo COMMAND [options]\n\nVireo: virtio devices and drivers over vhost-user.\n\ncommands:");
  for (const auto& c : vireo::cli::kCommands) std::printf("  %-22s %s\n", c.words, c.summary);
  std::puts("\noptions:\n  --help                 print this help and exit\n"
            "  --version              print the version and exit\n\n"
            "Run 'vireo COMMAND --help' for the options of a command (each with its default); 'man vireo'\n"
            "has them all.");
}

}  // namespace

int main(int argc, char** argv) {
  // Installed as libexec/vireo/vhost-user-blk (-net, -rng) for the vhost-user.json descriptors
  // (rst "Backend program conventions"): the name selects the device command.
  const std::string self = argv[0] != nullptr ? argv[0] : "";
  const std::string base = self.substr(self.rfind('/') + 1);
  if (base.rfind("vhost-user-", 0) == 0) {
    for (const auto& c : vireo::cli::kCommands)
      if (base.substr(11) == c.words) return c.run(argc, argv, 1);
  }
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) return vireo::cli::version_main(argc, argv, 2);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  const vireo::cli::Command* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& c : vireo::cli::kCommands) {
    auto words = split_words(c.words);
    if (words.size() > static_cast<std::size_t>(argc - 1) || words.size() <= best_len) continue;
    bool match = true;
    for (std::size_t i = 0; i < words.size(); ++i) match = match && words[i] == argv[1 + i];
    if (match) {
      best = &c;
      best_len = words.size();
    }
  }
  if (best == nullptr) {
    std::fprintf(stderr, "vireo: unknown command '%s' (see vireo --help)\n", argv[1]);
    return 2;
  }
  // Only the benchmark commands need Vireo's side plugged into bench/.
  if (std::strcmp(argv[1], "bench") == 0) vireo::cli::install_bench_hooks("/proc/self/exe");
  return best->run(argc, argv, 1 + static_cast<int>(best_len));
}

int vireo::cli::version_main(int argc, char** argv, int first) {
  vireo::OptionParser p("vireo version", "Print the Vireo version.");
  if (auto rc = p.parse(argc, argv, first)) return *rc;
  std::puts("vireo " VIREO_VERSION);
  return 0;
}
