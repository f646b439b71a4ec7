// A fixed-size float buffer aligned to a cache line (64 bytes), so that full-vector loads of
// AVX-512 kernels never straddle two lines when the data starts at the buffer.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace mbf {

class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t count) { reset(count); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      std::free(data_);
      data_ = other.data_;
      size_ = other.size_;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  // Reallocates to count floats, zero-filled.
  void reset(std::size_t count) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (count == 0) return;
    // Exactly count floats (posix_memalign takes any size): no slack past the end, so that
    // AddressSanitizer and valgrind see a kernel that reads or writes beyond the buffer.
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, count * sizeof(float)) != 0) throw std::bad_alloc();
    data_ = static_cast<float*>(p);
    size_ = count;
    for (std::size_t i = 0; i < count; ++i) data_[i] = 0.0f;
  }

  float* data() { return data_; }
  const float* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

// Rounds a float count up so that the next buffer placed after it stays 64-byte aligned.
inline std::size_t round_up_to_line(std::size_t floats) {
  constexpr std::size_t per_line = AlignedBuffer::kAlignment / sizeof(float);
  return (floats + per_line - 1) / per_line * per_line;
}

}  // namespace mbf
