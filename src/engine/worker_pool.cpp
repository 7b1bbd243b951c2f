#include "engine/worker_pool.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace grm::engine {

namespace {

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

thread_local bool in_job = false;  // this thread is running items of a job (nested calls run serially)

// A decode step calls the pool a few dozen times (each layer's attention, and the small products of
// engine::linear), with gaps of tens of µs between calls. Waking a sleeping thread costs about as much as a
// small product, so a helper that has finished an item polls for the next job for a while (yielding the
// core to any other runnable thread, such as the BLAS library's) before it sleeps on the condition variable;
// the caller polls for the helpers' end the same way.
constexpr auto kPoll = std::chrono::microseconds(200);

template <typename Done>
bool poll(Done done) {
  const auto until = std::chrono::steady_clock::now() + kPoll;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_.store(true);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return static_cast<int>(threads_.size()) + 1; }

  void run(int64_t n, const std::function<void(int64_t)>& fn) {
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      error_ = nullptr;
      busy_.store(static_cast<int>(threads_.size()));
      job_.fetch_add(1);
    }
    wake_.notify_all();
    drain();
    if (!poll([&] { return busy_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(m_);
      done_.wait(lock, [&] { return busy_.load() == 0; });
    }
    std::lock_guard<std::mutex> lock(m_);
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void drain() {
    in_job = true;
    for (int64_t i; (i = next_.fetch_add(1)) < n_;) {
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
        next_.store(n_);  // skip the items not started yet
      }
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      auto ready = [&] { return quit_.load() || job_.load() != seen; };
      if (!poll(ready)) {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, ready);
      }
      if (quit_.load()) return;
      seen = job_.load();
      drain();
      if (busy_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(m_);  // the caller checks busy_ under m_ before it sleeps
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* fn_ = nullptr;  // fn_, n_ and error_ are written under m_
  int64_t n_ = 0;
  std::exception_ptr error_;
  std::atomic<int64_t> next_{0};
  std::atomic<uint64_t> job_{0};
  std::atomic<int> busy_{0};  // helpers still on the current job
  std::atomic<bool> quit_{false};
};

std::mutex config_mutex;  // guards requested, pool
int requested = 0;
std::unique_ptr<Pool> pool;
pid_t pool_pid = 0;    // the process that started pool's threads (a forked child has none of them)
std::mutex run_mutex;  // held while a job runs on the pool

int resolved(int n) { return n > 0 ? n : available_cores(); }

}  // namespace

void set_worker_threads(int n) {
  std::lock_guard<std::mutex> run_lock(run_mutex);  // never replace the pool under a running job
  std::lock_guard<std::mutex> lock(config_mutex);
  requested = n < 0 ? 0 : n;
  if (pool && pool->size() != resolved(requested)) pool.reset();
}

int worker_threads() {
  std::lock_guard<std::mutex> lock(config_mutex);
  return resolved(requested);
}

void parallel_items(int64_t n, const std::function<void(int64_t)>& fn) {
  auto serial = [&] {
    for (int64_t i = 0; i < n; ++i) fn(i);
  };
  if (n < 2 || in_job) return serial();
  std::unique_lock<std::mutex> run_lock(run_mutex, std::try_to_lock);
  if (!run_lock.owns_lock()) return serial();  // busy with another thread's job
  Pool* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(config_mutex);
    const int threads = resolved(requested);
    if (pool && pool_pid != getpid()) (void)pool.release();  // forked: its threads are not ours to join
    if (threads > 1 && !pool) {
      pool = std::make_unique<Pool>(threads - 1);
      pool_pid = getpid();
    }
    if (threads > 1) p = pool.get();
  }
  if (!p) return serial();
  in_job = true;
  try {
    p->run(n, fn);
  } catch (...) {
    in_job = false;
    throw;
  }
  in_job = false;
}

}  // namespace grm::engine
