// A fixed-size buffer of T aligned to a cache line (64 bytes), so that full-vector loads of
// AVX-512 kernels never straddle two lines when the data starts at the buffer. AlignedBuffer
// holds floats; an int8 network would use AlignedArray<std::uint8_t> for its activations.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>

namespace mbf {

template <typename T>
class AlignedArray {
  static_assert(std::is_trivially_copyable<T>::value, "AlignedArray holds plain values");

 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedArray() = default;
  explicit AlignedArray(std::size_t count) { reset(count); }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  AlignedArray(AlignedArray&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  AlignedArray& operator=(AlignedArray&& other) noexcept {
    if (this != &other) {
      std::free(data_);
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~AlignedArray() { std::free(data_); }

  // Reallocates to count values, zero-filled.
  void reset(std::size_t count) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (count == 0) return;
    // Exactly count values (posix_memalign takes any size): no slack past the end, so that
    // AddressSanitizer and valgrind see a kernel that reads or writes beyond the buffer.
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, count * sizeof(T)) != 0) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    size_ = count;
    for (std::size_t i = 0; i < count; ++i) data_[i] = T{};
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

using AlignedBuffer = AlignedArray<float>;

// Rounds a count of T up so that the next buffer placed after it stays 64-byte aligned.
template <typename T = float>
inline std::size_t round_up_to_line(std::size_t count) {
  constexpr std::size_t per_line = AlignedArray<T>::kAlignment / sizeof(T);
  return (count + per_line - 1) / per_line * per_line;
}

}  // namespace mbf
