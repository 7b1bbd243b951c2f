#include "engine/worker_pool.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// Helpers sleep on a condition variable between jobs: a decode step calls the pool once per layer, and
// waking a helper (a few µs) is small against the ~100 µs–1 ms of attention work it then takes over.
class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
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
      busy_ = static_cast<int>(threads_.size());
      ++job_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return busy_ == 0; });
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
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return quit_ || job_ != seen; });
        if (quit_) return;
        seen = job_;
      }
      drain();
      std::lock_guard<std::mutex> lock(m_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  uint64_t job_ = 0;
  int busy_ = 0;
  bool quit_ = false;
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
