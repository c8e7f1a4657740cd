// FuzzInput: reads a libFuzzer input front to back as little-endian integers and byte runs.
// Past the end every read yields zeros, so any input, however short, decodes to something; the
// seed generator (make_corpus.py) writes the same format with struct.pack('<...').
//
//   FuzzInput in(data, size);
//   std::uint8_t op = in.u8();
//   std::uint16_t len = in.u16();
//   in.bytes(dst, len);              // copies min(len, left()) bytes, zero-fills the rest
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vireo::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

  bool empty() const { return n_ == 0; }
  std::size_t left() const { return n_; }

  std::uint8_t u8() { return take<std::uint8_t>(); }
  std::uint16_t u16() { return take<std::uint16_t>(); }
  std::uint32_t u32() { return take<std::uint32_t>(); }
  std::uint64_t u64() { return take<std::uint64_t>(); }
  bool flag() { return (u8() & 1) != 0; }

  // Copies n bytes into dst (zero-filled past the end of the input); returns the bytes copied.
  std::size_t bytes(void* dst, std::size_t n) {
    const std::size_t k = std::min(n, n_);
    if (k != 0) std::memcpy(dst, p_, k);
    if (n > k) std::memset(static_cast<std::byte*>(dst) + k, 0, n - k);
    p_ += k;
    n_ -= k;
    return k;
  }

 private:
  template <class T>
  T take() {
    T v{};
    bytes(&v, sizeof v);  // x86-64: host order is little-endian, as the generator writes
    return v;
  }
  const std::uint8_t* p_;
  std::size_t n_;
};

}  // namespace vireo::fuzz
