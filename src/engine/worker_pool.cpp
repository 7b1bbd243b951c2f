#include "engine/worker_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace grm::engine {

namespace {

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
    try {
      for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { loop(); });
    } catch (...) {  // e.g. the process may not start more threads: stop those that did start
      stop();
      throw;
    }
  }
  ~Pool() { stop(); }
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
  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_.store(true);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
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

// The pool is never destroyed at exit (a helper may be polling, or another thread inside parallel_items,
// while static destructors run); only set_worker_threads replaces it, under run_mutex.
std::mutex config_mutex;  // guards requested, pool, pool_failed
int requested = 0;
Pool* pool = nullptr;
bool pool_failed = false;  // starting helper threads failed once: run serially from then on
std::mutex run_mutex;      // held while a job runs on the pool, and while fork() copies the process

int resolved(int n) { return n > 0 ? n : available_cores(); }

// A forked child has none of the parent's helper threads: it forgets the pool (leaking it, as its threads
// cannot be joined) and starts its own when it next needs one. Holding both mutexes across fork() means the
// child never inherits one locked by a thread that does not exist there.
void before_fork() {
  run_mutex.lock();
  config_mutex.lock();
}
void after_fork_parent() {
  config_mutex.unlock();
  run_mutex.unlock();
}
void after_fork_child() {
  pool = nullptr;
  config_mutex.unlock();
  run_mutex.unlock();
}
const bool fork_handlers = [] { return pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0; }();

}  // namespace

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void set_worker_threads(int n) {
  if (in_job) throw std::logic_error("set_worker_threads called from inside parallel_items");
  std::lock_guard<std::mutex> run_lock(run_mutex);  // never replace the pool under a running job
  std::lock_guard<std::mutex> lock(config_mutex);
  requested = n < 0 ? 0 : n;
  if (pool && pool->size() != resolved(requested)) {
    delete pool;
    pool = nullptr;
  }
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
    if (threads > 1 && !pool && !pool_failed) {
      try {
        pool = new Pool(threads - 1);
      } catch (const std::system_error&) {
        pool_failed = true;
      }
    }
    if (threads > 1) p = pool;
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
