// libFuzzer target: the vhost-user message parser and dispatcher. Arbitrary bytes become a
// sequence of front-end messages (header, payload, and fds: real eventfds, memfds, a socket or a
// pipe, as the bytes say) handed to device::Session::handle(), which runs proto::validate() (the
// message table) and then the handlers, with a fake device behind it. Two harness operations let
// the input act like a live front-end between messages: write guest memory (a memfd it sent) and
// kick an eventfd it sent. The Session runs its data plane inline (SessionOptions
// inline_data_plane): the harness calls poll_data_plane() after every operation, where the worker
// thread would have run, so started rings are walked by the real Worker loop without a thread
// per input (and the interleaving of messages and ring walks is reproducible).
//
// Oracles besides ASan/UBSan/LSan: nothing guest-controlled aborts; when the Session is gone every
// fd and mapping it owned is released (proto::live_fd_count / live_mapping_count return to their
// values before the input).
//
// Input format (fuzz_input.hpp), repeated: u8 request (0xFF kick {u8 which}; 0xFE poke {u8 which
// memfd, u16 offset, u8 len, bytes}); u8 flags (bits 0-1 version, 0 meaning 1; bit 2 REPLY; bit 3
// NEED_REPLY); u16 size (mod 4097); size payload bytes; u8 fd count (mod 4), per fd u8 kind (0
// eventfd, 1 memfd {u8 pages-1, mod 16}, 2 socket, 3 pipe).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/log.hpp"
#include "device/backend.hpp"
#include "device/backend_channel.hpp"
#include "device/session.hpp"
#include "device/virt_queue.hpp"
#include "fuzz_input.hpp"
#include "proto/connection.hpp"
#include "proto/sys/event_fd.hpp"
#include "proto/sys/live_counts.hpp"
#include "proto/sys/memfd.hpp"
#include "proto/sys/unix_socket.hpp"
#include "vring/chain.hpp"

namespace {

using namespace vireo;
using fuzz::FuzzInput;

// Two queues, 16 bytes of config space; serves buffers like rng (fills what is writable).
class FuzzBackend final : public device::Backend {
 public:
  device::DeviceInfo info() const override {
    return {.device_id = 4, .name = "fuzz", .num_queues = 2, .max_queue_size = 256,
            .device_features = 1, .config_size = 16};
  }
  void read_config(std::uint32_t offset, std::span<std::byte> out) const override {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::byte(offset + i);
  }
  device::Status write_config(std::uint32_t, std::span<const std::byte>) override { return {}; }
  void process(device::VirtQueue& q) override {
    q.visit([&](auto& ring) {
      vring::Chain& c = q.scratch_chain();
      for (int n = 0; n < 64 && ring.pop(c).value_or(false); ++n) {
        const std::byte fill[64] = {};
        vring::ChainWriter w(c);
        while (w.write(fill, sizeof fill) == sizeof fill) {
        }
        ring.push(c, c.writable_bytes());
      }
      ring.flush();
    });
    q.notify();
  }
};

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_session: invariant violated: %s\n", what);
  __builtin_trap();
}

// The harness's side of what it sent: its own copies of the eventfds and memfds.
struct Sent {
  std::vector<proto::UniqueFd> eventfds, memfds, peers;
};

proto::UniqueFd make_fd(FuzzInput& in, Sent& sent) {
  switch (in.u8() % 4) {
    case 0: {
      auto e = proto::EventFd::create(/*nonblocking=*/true);
      if (!e) return {};
      proto::UniqueFd fd = std::move(*e).take();
      sent.eventfds.emplace_back(::dup(fd.get()));
      return fd;
    }
    case 1: {
      const std::size_t bytes = static_cast<std::size_t>(in.u8() % 16 + 1) * 4096;
      auto m = proto::MemFd::create("fuzz-ram", bytes);
      if (!m) return {};
      proto::UniqueFd fd = std::move(*m).take();
      sent.memfds.emplace_back(::dup(fd.get()));
      return fd;
    }
    case 2: {
      auto sp = proto::UnixStream::socketpair();
      if (!sp) return {};
      sent.peers.emplace_back(::dup(sp->second.fd()));
      return proto::UniqueFd(::dup(sp->first.fd()));
    }
    default: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return {};
      proto::UniqueFd w(p[1]);
      return proto::UniqueFd(p[0]);
    }
  }
}

void poke(FuzzInput& in, const Sent& sent) {
  const std::uint8_t which = in.u8();
  const std::uint16_t off = in.u16();
  std::uint8_t buf[256];
  const std::size_t len = in.u8();
  in.bytes(buf, len);
  if (sent.memfds.empty()) return;
  (void)!::pwrite(sent.memfds[which % sent.memfds.size()].get(), buf, len, off);
}

void kick(FuzzInput& in, const Sent& sent) {
  const std::uint8_t which = in.u8();
  if (sent.eventfds.empty()) return;
  const std::uint64_t one = 1;
  (void)!::write(sent.eventfds[which % sent.eventfds.size()].get(), &one, sizeof one);
}

// Reads and drops whatever the Session replied, closing any fds that came with it (more than 64
// in one read: the kernel closes the rest, MSG_CTRUNC). The replies are not parsed (nothing here
// checks them): raw non-blocking reads, one syscall per 64 KiB, where polling and reading each
// reply's header and body took four syscalls per reply.
void drain(const proto::UnixStream& peer) {
  static std::byte buf[65536];
  for (;;) {
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(64 * sizeof(int))];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(peer.fd(), &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); n > 0 && c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < k; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        proto::UniqueFd dropped(fd);  // owned, then closed at once
      }
    }
    if (n <= 0) return;
  }
}

void run(FuzzInput& in) {
  auto sp = proto::UnixStream::socketpair();
  if (!sp) return;
  proto::Connection conn(std::move(sp->first));
  const proto::UnixStream peer(std::move(sp->second));
  FuzzBackend backend;
  device::BackendChannel channel;
  backend.set_channel(&channel);
  Sent sent;
  {
    device::Session session(backend, conn, channel,
                            {.busy_poll = false, .workers = 1, .inline_data_plane = true});
    for (unsigned n = 0; n < 64 && !in.empty(); ++n) {
      const std::uint8_t req = in.u8();
      if (req == 0xFF || req == 0xFE) {
        if (req == 0xFF) kick(in, sent);
        else poke(in, sent);
        session.poll_data_plane();  // the worker wakes on the kick (or polls a kickless queue)
        continue;
      }
      proto::Message msg;
      const std::uint8_t f = in.u8();
      msg.hdr.request = req;
      msg.hdr.flags = ((f & 3) == 0 ? proto::kVersion : (f & 3)) | (f & (proto::kFlagReply | proto::kFlagNeedReply));
      msg.hdr.size = in.u16() % (proto::kMaxPayload + 1);
      in.bytes(msg.payload.data(), msg.hdr.size);
      for (unsigned k = in.u8() % 4; k != 0; --k) {
        proto::UniqueFd fd = make_fd(in, sent);
        if (fd.valid()) msg.fds.push_back(std::move(fd));
      }
      const bool keep = session.handle(msg);
      session.poll_data_plane();  // a started or resumed queue is processed once
      // Replies pile up in the socket meanwhile: 16 of them (each at most 12 + 4096 bytes) fit
      // its buffer, so the Session never blocks sending one.
      if (n % 16 == 15) drain(peer);
      if (!keep) break;
    }
    drain(peer);
  }  // ~Session: rings stopped, every fd and mapping released
}

}  // namespace

// Only errors are logged while fuzzing (VIREO_FUZZ_LOG=1 keeps the Session's info lines, to see
// what a seed does).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::getenv("VIREO_FUZZ_LOG") == nullptr) log::set_threshold(log::Level::error);
  else log::set_threshold(log::Level::debug);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::int64_t fds = proto::live_fd_count();
  const std::int64_t maps = proto::live_mapping_count();
  FuzzInput in(data, size);
  run(in);
  if (proto::live_fd_count() != fds) violated("an fd outlived the Session (leak)");
  if (proto::live_mapping_count() != maps) violated("a mapping outlived the Session (leak)");
  return 0;
}
