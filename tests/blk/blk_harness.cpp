#include "tests/blk/blk_harness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace vireo::test {

TempImage::TempImage(std::uint64_t bytes) {
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                     "/vireo-blk-test-XXXXXX";
  fd_.reset(::mkstemp(tmpl.data()));
  if (!fd_) throw std::runtime_error("mkstemp " + tmpl);
  path_ = tmpl;
  std::vector<std::byte> pat(bytes);
  for (std::uint64_t i = 0; i < bytes; ++i) pat[i] = pattern(i);
  write(0, pat);
}

TempImage::~TempImage() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::vector<std::byte> TempImage::read(std::uint64_t off, std::size_t len) const {
  std::vector<std::byte> v(len);
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_.get(), v.data() + done, len - done, static_cast<off_t>(off + done));
    if (n <= 0) throw std::runtime_error("pread " + path_);
    done += static_cast<std::size_t>(n);
  }
  return v;
}

std::vector<std::byte> TempImage::contents() const {
  struct stat st {};
  ::fstat(fd_.get(), &st);
  return read(0, static_cast<std::size_t>(st.st_size));
}

void TempImage::write(std::uint64_t off, const std::vector<std::byte>& bytes) const {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd_.get(), bytes.data() + done, bytes.size() - done,
                         static_cast<off_t>(off + done));
    if (n <= 0) throw std::runtime_error("pwrite " + path_);
    done += static_cast<std::size_t>(n);
  }
}

void TempImage::truncate(std::uint64_t bytes) const {
  if (::ftruncate(fd_.get(), static_cast<off_t>(bytes)) != 0)
    throw std::runtime_error("ftruncate " + path_);
}

}  // namespace vireo::test
