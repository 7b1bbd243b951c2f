#include "core/schedule.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "random") return ScheduleKind::Random;
  if (name == "balanced") return ScheduleKind::Balanced;
  if (name == "identity") return ScheduleKind::Identity;
  throw Error("unknown schedule '" + name + "' (expected balanced, random or identity)");
}

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Random: return "random";
    case ScheduleKind::Balanced: return "balanced";
    case ScheduleKind::Identity: return "identity";
  }
  return "?";
}

namespace {

Order identity(int n) {
  Order o(static_cast<size_t>(n));
  std::iota(o.begin(), o.end(), 0);
  return o;
}

// Stream tags keep the seeds of different uses of `seed` apart.
constexpr uint64_t kRandomTag = 0x52414E44;    // "RAND"
constexpr uint64_t kBaseTag = 0x42415345;      // "BASE"
constexpr uint64_t kShiftTag = 0x53484654;     // "SHFT"

Order random_order(int n, uint64_t seed, int j) {
  Order o = identity(n);
  Rng rng(derive_seed(seed ^ kRandomTag, static_cast<uint64_t>(j)));
  rng.shuffle(o);
  return o;
}

// Block b = j / n of the balanced schedule is a Latin square: row r shows base_b rotated by shift_b[r].
Order balanced_order(int n, uint64_t seed, int j) {
  const int block = j / n, row = j % n;
  Order base = identity(n);
  Rng base_rng(derive_seed(seed ^ kBaseTag, static_cast<uint64_t>(block)));
  base_rng.shuffle(base);
  std::vector<int> shifts = identity(n);
  Rng shift_rng(derive_seed(seed ^ kShiftTag, static_cast<uint64_t>(block)));
  shift_rng.shuffle(shifts);
  Order o(static_cast<size_t>(n));
  for (int pos = 0; pos < n; ++pos) o[static_cast<size_t>(pos)] = base[static_cast<size_t>((pos + shifts[static_cast<size_t>(row)]) % n)];
  return o;
}

}  // namespace

std::vector<Order> make_schedule(ScheduleKind kind, int n, int k, uint64_t seed) {
  if (n < 1) throw Error("schedule needs at least one response");
  if (k < 0) throw Error("schedule needs k >= 0");
  std::vector<Order> out;
  out.reserve(static_cast<size_t>(k));
  for (int j = 0; j < k; ++j) {
    switch (kind) {
      case ScheduleKind::Identity: out.push_back(identity(n)); break;
      case ScheduleKind::Random: out.push_back(random_order(n, seed, j)); break;
      case ScheduleKind::Balanced: out.push_back(balanced_order(n, seed, j)); break;
    }
  }
  return out;
}

bool is_permutation_of(const Order& order, int n) {
  if (static_cast<int>(order.size()) != n) return false;
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (int v : order) {
    if (v < 0 || v >= n || seen[static_cast<size_t>(v)]) return false;
    seen[static_cast<size_t>(v)] = true;
  }
  return true;
}

std::vector<int> map_back(const Order& order, const std::vector<int>& shown_scores) {
  const int n = static_cast<int>(order.size());
  if (static_cast<int>(shown_scores.size()) != n)
    throw Error("map_back: " + std::to_string(shown_scores.size()) + " scores for an order of " + std::to_string(n));
  if (!is_permutation_of(order, n)) throw Error("map_back: order is not a permutation of 0.." + std::to_string(n - 1));
  std::vector<int> original(static_cast<size_t>(n));
  for (int pos = 0; pos < n; ++pos) original[static_cast<size_t>(order[static_cast<size_t>(pos)])] = shown_scores[static_cast<size_t>(pos)];
  return original;
}

}  // namespace grm
