// Defaults of the optional Backend hooks (device/backend.hpp).
#include "device/backend.hpp"

#include <algorithm>

namespace vireo::device {

void Backend::read_config(std::uint32_t, std::span<std::byte> out) const {
  std::fill(out.begin(), out.end(), std::byte{0});
}

Status Backend::write_config(std::uint32_t offset, std::span<const std::byte> in) {
  return error("device " + std::string(info().name) + " has no writable config field at offset " +
               std::to_string(offset) + " (" + std::to_string(in.size()) + " bytes)");
}

Status Backend::set_features(std::uint64_t) { return {}; }
void Backend::queue_started(VirtQueue&) {}
void Backend::queue_stopping(VirtQueue&) {}
int Backend::completion_fd(VirtQueue&) { return -1; }
bool Backend::completion_fd_is_event_counter(VirtQueue&) { return false; }
void Backend::complete(VirtQueue&) {}

}  // namespace vireo::device
