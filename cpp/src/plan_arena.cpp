// Allocation of a plan's workspaces (see plan_arena.h), instantiated for the activation types
// a plan can have.
#include "plan_arena.h"

#include <cstdint>

namespace mbf {

template <typename T>
PlanArena<T>::PlanArena(const ArenaSizes& sizes, int threads) : sizes_(sizes) {
  workspaces_.resize(static_cast<std::size_t>(threads));
  for (std::size_t i = 0; i < workspaces_.size(); ++i) {
    Workspace<T>& ws = workspaces_[i];
    ws.a.reset(sizes_.largest);
    ws.b.reset(sizes_.largest);
    ws.bands.reset(sizes_.band * (i == 0 ? static_cast<std::size_t>(threads) : 1));
    ws.pooled.reset(sizes_.pooled);
  }
}

template <typename T>
std::size_t PlanArena<T>::activation_values() const {
  std::size_t n = 0;
  for (const Workspace<T>& w : workspaces_) n += w.a.size() + w.b.size() + w.bands.size();
  return n;
}

template class PlanArena<float>;
template class PlanArena<std::uint8_t>;

std::string mib(std::size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace mbf
