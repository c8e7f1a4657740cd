// Expected<T, E>: a value or an error, the subset of C++23 std::expected that Vireo uses.
//
// Errors are values on every data and control path (no exceptions across ring or socket code).
//
//   Expected<int, Errc> parse(...);
//   auto r = parse(...);
//   if (!r) return Unexpected(r.error());
//   use(*r);
//
// There is deliberately no throwing value(): reading a value that is not there is a programming
// error caught by the debug assertion in operator*, and guest-controlled data never gets that far.
#pragma once

#include <cassert>
#include <new>
#include <type_traits>
#include <utility>

namespace vireo {

template <class E>
class Unexpected {
 public:
  constexpr explicit Unexpected(E e) : error_(std::move(e)) {}
  constexpr const E& error() const& { return error_; }
  constexpr E&& error() && { return std::move(error_); }

 private:
  E error_;
};

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  using value_type = T;
  using error_type = E;

  constexpr Expected()
    requires std::is_default_constructible_v<T>
      : has_(true) {
    new (&value_) T();
  }
  template <class U = T>
    requires std::is_constructible_v<T, U&&> &&
             (!std::is_same_v<std::remove_cvref_t<U>, Expected>) &&
             (!std::is_same_v<std::remove_cvref_t<U>, Unexpected<E>>)
  constexpr Expected(U&& v) : has_(true) {  // NOLINT(google-explicit-constructor)
    new (&value_) T(std::forward<U>(v));
  }
  constexpr Expected(Unexpected<E> u) : has_(false) {  // NOLINT(google-explicit-constructor)
    new (&error_) E(std::move(u).error());
  }
  Expected(const Expected& o) : has_(o.has_) {
    if (has_) new (&value_) T(o.value_);
    else new (&error_) E(o.error_);
  }
  Expected(Expected&& o) noexcept : has_(o.has_) {
    if (has_) new (&value_) T(std::move(o.value_));
    else new (&error_) E(std::move(o.error_));
  }
  Expected& operator=(const Expected& o) {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (has_) new (&value_) T(o.value_);
      else new (&error_) E(o.error_);
    }
    return *this;
  }
  Expected& operator=(Expected&& o) noexcept {
    if (this != &o) {
      destroy();
      has_ = o.has_;
      if (has_) new (&value_) T(std::move(o.value_));
      else new (&error_) E(std::move(o.error_));
    }
    return *this;
  }
  ~Expected() { destroy(); }

  constexpr bool has_value() const { return has_; }
  constexpr explicit operator bool() const { return has_; }

  constexpr T& operator*() & { assert(has_); return value_; }
  constexpr const T& operator*() const& { assert(has_); return value_; }
  constexpr T&& operator*() && { assert(has_); return std::move(value_); }
  constexpr T* operator->() { assert(has_); return &value_; }
  constexpr const T* operator->() const { assert(has_); return &value_; }
  constexpr const E& error() const { assert(!has_); return error_; }
  template <class U>
  constexpr T value_or(U&& fallback) const& {
    return has_ ? value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void destroy() {
    if (has_) value_.~T();
    else error_.~E();
  }
  union {
    T value_;
    E error_;
  };
  bool has_;
};

template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  using value_type = void;
  using error_type = E;
  constexpr Expected() : has_(true), error_() {}
  constexpr Expected(Unexpected<E> u)  // NOLINT(google-explicit-constructor)
      : has_(false), error_(std::move(u).error()) {}
  constexpr bool has_value() const { return has_; }
  constexpr explicit operator bool() const { return has_; }
  constexpr const E& error() const { assert(!has_); return error_; }

 private:
  bool has_;
  E error_;
};

}  // namespace vireo
