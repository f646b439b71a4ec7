// The activation memory of a network plan, allocated once when the plan is built so that a run
// allocates nothing: one workspace per image in flight, each with two ping-pong activation
// buffers, the band buffers of the fused layers and the pooled features. Templated on the
// activation type (float for the fp32 Plan; an int8 network would hold std::uint8_t); sizes are
// counted in values of that type.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mobilenet_fast/aligned_buffer.h"

namespace mbf {

// Sizes (values) of one workspace's buffers, found while the plan checks its layers.
struct ArenaSizes {
  std::size_t largest = 0;  // one ping-pong buffer: the largest activation of one image
  std::size_t band = 0;     // one band buffer (0: no fused layer)
  std::size_t pooled = 0;   // the pooled features

  // Values of activation memory (ping-pong and band buffers) for `threads` workspaces.
  std::size_t activation_values(int threads) const {
    return static_cast<std::size_t>(threads) * (2 * largest + band) + band * static_cast<std::size_t>(threads - 1);
  }
};

// Buffers for one image in flight.
template <typename T>
struct Workspace {
  AlignedArray<T> a, b;   // ping-pong activations
  AlignedArray<T> bands;  // band buffers of the fused layers, one per thread using them
  AlignedArray<T> pooled; // pooled features
};

template <typename T>
class PlanArena {
 public:
  // One workspace per thread: batches run one image per thread. Workspace 0 also serves the
  // split-image mode, where every thread needs a band buffer. Throws std::bad_alloc.
  PlanArena(const ArenaSizes& sizes, int threads);

  const ArenaSizes& sizes() const { return sizes_; }
  Workspace<T>& workspace(int i) { return workspaces_[static_cast<std::size_t>(i)]; }
  // Values held by the ping-pong and band buffers of every workspace.
  std::size_t activation_values() const;

 private:
  ArenaSizes sizes_;
  std::vector<Workspace<T>> workspaces_;
};

// "N MiB" (rounded down), for out-of-memory messages.
std::string mib(std::size_t bytes);

}  // namespace mbf
