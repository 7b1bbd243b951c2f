#include "engine/worker_pool.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using grm::engine::parallel_items;
using grm::engine::set_worker_threads;
using grm::engine::worker_threads;

namespace {

// Restores the process-wide default (0: every core) when a test ends.
struct ThreadsGuard {
  ~ThreadsGuard() { set_worker_threads(0); }
};

std::vector<int> run_counts(int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  parallel_items(n, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

}  // namespace

TEST(WorkerPool, EveryItemRunsExactlyOnce) {
  ThreadsGuard guard;
  for (int threads : {1, 2, 4}) {
    set_worker_threads(threads);
    EXPECT_EQ(worker_threads(), threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      const std::vector<int> counts = run_counts(n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(counts[static_cast<size_t>(i)], 1) << threads << " threads, n " << n << ", item " << i;
    }
  }
}

TEST(WorkerPool, UsesMoreThanOneThreadWhenAsked) {
  ThreadsGuard guard;
  set_worker_threads(3);
  std::mutex m;
  std::set<std::thread::id> ids;
  // Items that wait for each other can only finish if at least two threads run them.
  std::atomic<int> started{0};
  parallel_items(2, [&](int64_t) {
    started.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (started.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(WorkerPool, ZeroMeansEveryAvailableCore) {
  ThreadsGuard guard;
  set_worker_threads(0);
  EXPECT_GE(worker_threads(), 1);
  EXPECT_LE(worker_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(WorkerPool, RethrowsAnErrorAndStaysUsable) {
  ThreadsGuard guard;
  for (int threads : {1, 3}) {
    set_worker_threads(threads);
    std::atomic<int> ran{0};
    EXPECT_THROW(parallel_items(50,
                                [&](int64_t i) {
                                  ran.fetch_add(1);
                                  if (i % 10 == 3) throw std::runtime_error("item failed");
                                }),
                 std::runtime_error);
    EXPECT_GE(ran.load(), 4) << threads << " threads";  // items 0..3 at least, in some order
    EXPECT_EQ(run_counts(9), std::vector<int>(9, 1)) << "the pool works after an error";
  }
}

TEST(WorkerPool, NestedAndConcurrentCallsComplete) {
  ThreadsGuard guard;
  set_worker_threads(2);
  std::atomic<int> inner{0};
  parallel_items(4, [&](int64_t) { parallel_items(5, [&](int64_t) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 20);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) parallel_items(10, [&](int64_t) { total.fetch_add(1); });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 50 * 10);
}

TEST(WorkerPool, ChangingTheThreadCountInsideAJobIsAnError) {
  ThreadsGuard guard;
  set_worker_threads(2);
  EXPECT_THROW(parallel_items(3, [](int64_t) { set_worker_threads(1); }), std::logic_error);
  EXPECT_EQ(run_counts(5), std::vector<int>(5, 1));
}

// A forked child has none of the parent's helper threads: it must start its own, change the count and exit
// without touching the parent's (a hang or crash here fails the test through the child's exit status).
TEST(WorkerPool, WorksInAForkedChild) {
  ThreadsGuard guard;
  set_worker_threads(2);
  EXPECT_EQ(run_counts(8), std::vector<int>(8, 1));  // the parent's pool exists now
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    bool ok = run_counts(50) == std::vector<int>(50, 1);
    set_worker_threads(3);
    ok = ok && run_counts(50) == std::vector<int>(50, 1);
    std::exit(ok ? 0 : 1);  // runs static destructors, as a normal exit would
  }
  int status = 0;
  pid_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the forked child hung";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "the forked child crashed";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(run_counts(8), std::vector<int>(8, 1)) << "the parent's pool still works";
}
