#include "bench/peer.hpp"

namespace vireo::bench {

Hooks& hooks() {
  static Hooks h;
  return h;
}

}  // namespace vireo::bench
