// Threads for grm's own kernels (decode attention), apart from libtorch's intra-op pool.
//
// Why a pool of its own: on these CPUs libtorch's default is one intra-op thread, and raising it parallelises
// every small op of a decode step with OpenMP threads that spin beside the BLAS library's own threads (float32
// matmuls already run on all cores); measured, that made decoding slower at every k. Decode attention at large
// k is the one part of a step that leaves cores idle and is worth splitting: its work items (kv head × group
// of rows) are independent and each writes its own output rows, so the result does not depend on how many
// threads ran it.
#pragma once
#include <cstdint>
#include <functional>

namespace grm::engine {

// The cores this process may run on (its CPU affinity; all the machine's where that is unknown).
int available_cores();

// Threads parallel_items may use, the caller included. 0 (the default): every core this process may run on.
// Waits for a running job; throws std::logic_error when called from inside one.
void set_worker_threads(int n);
int worker_threads();

// Calls fn(i) once for each i in [0, n), on the calling thread and the pool's helpers; returns when all are
// done. The first exception thrown by fn is rethrown here, once the items already started have finished (the
// rest are skipped). A call made while the
// pool is busy (from another thread, or from inside fn) runs its items on the calling thread alone, as do
// all calls if the helper threads could not be started. Safe across fork(): a child starts its own helpers.
void parallel_items(int64_t n, const std::function<void(int64_t)>& fn);

}  // namespace grm::engine
