// Permutation schedules for k samples of n responses, and mapping scores back to original order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"

namespace grm {

// order[pos] = original index of the response shown at position pos.
using Order = std::vector<int>;

enum class ScheduleKind { Random, Balanced, Identity };

ScheduleKind parse_schedule_kind(const std::string& name);  // throws grm::Error on unknown names
std::string to_string(ScheduleKind kind);

// k orders of n responses.
// - Random: an independent uniform shuffle per sample (the paper).
// - Balanced: Latin-square style; when k is a multiple of n every response visits every position exactly
//   k/n times; rows are shuffled cyclic shifts of a seeded base permutation.
// - Identity: every sample shows the original order.
// Sample j's order depends only on (kind, n, seed, j), so any sample can be reproduced alone and the
// first m orders of a k-schedule equal the m-schedule.
std::vector<Order> make_schedule(ScheduleKind kind, int n, int k, uint64_t seed);

// Scores given in shown order → original order. Throws grm::Error if sizes differ or order is not a
// permutation.
std::vector<int> map_back(const Order& order, const std::vector<int>& shown_scores);

// Is `order` a permutation of 0..n-1?
bool is_permutation_of(const Order& order, int n);

}  // namespace grm
