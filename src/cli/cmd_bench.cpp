// grm bench decode: what inference-time scaling costs on this machine. One table, ratios from one run.
#include <malloc.h>
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/core.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "core/template.h"
#include "engine/flops.h"
#include "engine/weights.h"
#include "engine/worker_pool.h"
#include "its/scorer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Starts a new peak of resident memory for peak_rss_mib(): returns the heap's free memory to the system (grm's
// malloc settings keep freed blocks, such as the bandwidth measurement's 0.5 GiB) and resets the kernel's
// high-water mark (Linux: "5" to /proc/self/clear_refs). Elsewhere the peak stays the process's.
void reset_peak_rss() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Peak resident memory since reset_peak_rss() (VmHWM), or of the whole process where that is not available.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  123456 kB"
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Best-of-3 GFLOP/s of an m×k·k×n matmul in `dtype`.
double gemm_gflops(c10::ScalarType dtype, int64_t m, int64_t k, int64_t n) {
  c10::InferenceMode guard;
  auto a = torch::randn({m, k}).to(dtype), b = torch::randn({k, n}).to(dtype);
  auto c = torch::matmul(a, b);  // warm-up (oneDNN primitive creation)
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    int iters = 0;
    do {
      c = torch::matmul(a, b);
      ++iters;
    } while (seconds(t0) < 0.3);
    best = std::min(best, seconds(t0) / iters);
  }
  return 2.0 * static_cast<double>(m * k * n) / best / 1e9;
}

// Best-of-3 memory bandwidth of a 256 MiB copy (bytes read + written per second), GB/s.
double copy_gbps() {
  c10::InferenceMode guard;
  const int64_t n = int64_t{64} << 20;  // floats
  auto src = torch::ones({n}), dst = torch::empty({n});
  dst.copy_(src);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    dst.copy_(src);
    best = std::min(best, seconds(t0));
  }
  return 2.0 * static_cast<double>(n) * 4.0 / best / 1e9;
}

struct BenchArgs {
  grm::cli::ModelArgs model;
  std::vector<int> ks{1, 2, 4, 8, 16, 32};
  int prompt_tokens = 400;
  int new_tokens = 150;
  int repeats = 3;
  std::string profile;  // chrome-trace JSON of one extra run at the largest k
};

int run_decode(const BenchArgs& a) {
  auto gen = grm::cli::open_generator(a.model);
  const auto& cfg = gen->model().config();
  const auto dtype = gen->options().dtype;
  const int64_t params = gen->model().parameter_count();

  // A pairwise judge request of ~prompt_tokens tokens in its two orders.
  std::string a_text = "The answer is 743 because 457 + 286 carries one into the hundreds.";
  std::string b_text = "The answer is 733; adding the tens gives 13 which I wrote as 3.";
  const grm::Template tmpl = grm::Template::builtin("compact");
  auto conv = grm::Conversation::from_query("What is 457 + 286? Explain briefly.");
  std::string prompts[2];
  for (int grow = 0; grow < 400; ++grow) {
    prompts[0] = tmpl.render(conv, {a_text, b_text});
    prompts[1] = tmpl.render(conv, {b_text, a_text});
    if (static_cast<int>(gen->encode_prompt(prompts[0]).size()) >= a.prompt_tokens) break;
    conv.messages[0].content += " Show the carries.";
  }
  const auto plen = static_cast<int64_t>(gen->encode_prompt(prompts[0]).size());
  if (plen + a.new_tokens > cfg.max_position_embeddings) throw grm::Error("model context too short for the benchmark");

  const auto kv_dtype = gen->model().kv_dtype();
  fmt::print("grm bench decode: {} parameters ({:.1f} M), dtype {}, KV cache {}, weights {}packed, {} intra-op thread(s), {} attention thread(s), prompt {} tokens, {} "
             "new tokens, 2 permutations\n",
             params, static_cast<double>(params) / 1e6, grm::engine::dtype_name(dtype), grm::engine::dtype_name(kv_dtype),
             gen->model().weights_packed() ? "" : "not ",
             at::get_num_threads(), grm::engine::worker_threads(), plen, a.new_tokens);
  // The peak of the compute dtype is measured again after every round and the best kept: the machine's speed
  // drifts, and a peak caught in a slow spell would flatter the decode's fraction of it.
  double peak_bf16 = gemm_gflops(c10::kBFloat16, 1024, 1024, 1024);
  double peak_f32 = gemm_gflops(c10::kFloat, 1024, 1024, 1024);
  double bandwidth = copy_gbps();
  std::string table = fmt::format("| k | prefill computed | prefill naive | decode tok/s | wall/request (s) | wall(k)/wall(1) | decode GFLOP/s | "
             "% of {} peak | least wall(k)/wall(1) at peak | KV GB/s if unshared | peak RSS (MiB) |\n"
             "|---|---|---|---|---|---|---|---|---|---|---|\n",
             grm::engine::dtype_name(dtype));
  // Requests for every k, then the runs interleaved (k = 1, 2, ..., 32, k = 1, 2, ...) keeping each k's best:
  // on a shared machine whose speed drifts, the ratios to k = 1 then compare runs made close together.
  std::vector<std::vector<grm::GenerationRequest>> reqs(a.ks.size());
  for (size_t i = 0; i < a.ks.size(); ++i)
    for (int j = 0; j < a.ks[i]; ++j) {
      grm::GenerationRequest r;
      r.prompt = prompts[j % 2];
      r.n = 1;
      r.first_index = j;
      r.params.temperature = 0.5;
      r.params.max_tokens = a.new_tokens;
      r.params.ignore_eos = true;
      r.params.seed = 1;
      reqs[i].push_back(r);
    }
  gen->generate({reqs[0][0]});  // warm-up
  std::vector<double> best(a.ks.size(), 1e30);
  std::vector<grm::engine::GenerationStats> stats(a.ks.size());
  std::vector<double> rss(a.ks.size());  // peak resident memory during k's first run
  for (int rep = 0; rep < a.repeats; ++rep)
    for (size_t i = 0; i < a.ks.size(); ++i) {
      gen->reset_stats();
      if (rep == 0) reset_peak_rss();
      const auto t0 = Clock::now();
      gen->generate(reqs[i]);
      const double w = seconds(t0);
      if (rep == 0) rss[i] = peak_rss_mib();
      if (w < best[i]) {
        best[i] = w;
        stats[i] = gen->stats();
      }
      if (i + 1 == a.ks.size()) {  // end of a round
        double& p = dtype == c10::kBFloat16 ? peak_bf16 : peak_f32;
        p = std::max(p, gemm_gflops(dtype, 1024, 1024, 1024));
        bandwidth = std::max(bandwidth, copy_gbps());
      }
    }
  const double peak = dtype == c10::kBFloat16 ? peak_bf16 : peak_f32;
  fmt::print("GEMM peak (1024^3; {}: best of the start and the end of each round): bf16 {:.0f} GFLOP/s, fp32 {:.0f} "
             "GFLOP/s; memory copy {:.1f} GB/s\n\n",
             grm::engine::dtype_name(dtype), peak_bf16, peak_f32, bandwidth);
  fmt::print("{}", table);
  if (!a.profile.empty()) {  // one more run at the largest k, traced op by op (not timed)
    torch::autograd::profiler::RecordProfile trace(a.profile);
    gen->generate(reqs.back());
  }
  for (size_t i = 0; i < a.ks.size(); ++i) {
    const auto& st = stats[i];
    const double tok_s = static_cast<double>(st.decode_tokens) / st.decode_seconds;
    const double gflops = tok_s * grm::engine::decode_flops_per_token(cfg, plen + a.new_tokens / 2) / 1e9;
    // Bytes of K and V one decoded token would read on its own (its whole context, all layers), to compare with
    // the copy bandwidth above. With k ≥ 2 the forks of a prompt read its positions once per group of forks, so
    // decode attention reads less than this (its own new positions dominate at k = 32).
    const double kv_bytes = 2.0 * static_cast<double>(cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim) *
                            static_cast<double>(plen + a.new_tokens / 2) * static_cast<double>(c10::elementSize(kv_dtype));
    // The least this request could take: its matmul FLOPs (a lower bound: prefill without attention and head)
    // all at the GEMM peak, with nothing else costing time; as a ratio to the measured k = 1.
    const double least = grm::engine::request_flops_lower_bound(cfg, st.prefill_tokens, st.decode_tokens,
                                                                plen + a.new_tokens / 2) / (peak * 1e9);
    fmt::print("| {} | {} | {} | {:.0f} | {:.2f} | {:.2f} | {:.1f} | {:.1f}% | {:.2f} | {:.1f} | {:.0f} |\n", a.ks[i],
               st.prefill_tokens, st.prompt_tokens_naive, tok_s, best[i], best[i] / best[0], gflops,
               100.0 * gflops / peak, least / best[0], tok_s * kv_bytes / 1e9, rss[i]);
  }
  return 0;
}

struct ScoreBenchArgs {
  grm::cli::ModelArgs model;
  std::vector<int> ks{1, 8, 32};
  int records = 1;  // the cost of k for one record; more records share the decode batches at every k
  int max_tokens = 150;
  std::string template_spec = "compact";
  int repeats = 3;
  int round_size = 4;  // early stop's rounds after the first
};

// Wall time per pairwise record for each k, with and without early stop, and the samples early stop saves.
int run_score(const ScoreBenchArgs& a) {
  auto gen = grm::cli::open_generator(a.model);
  const grm::Template tmpl = grm::Template::resolve(a.template_spec);
  std::vector<grm::Record> records;
  const char* pairs[][3] = {{"What is 457 + 286?", "457 + 286 = 743.", "457 + 286 = 733."},
                            {"Reverse the word 'planet'.", "tenalp", "tenlap"},
                            {"List three primary colours, in lowercase.", "red, yellow, blue", "Red, Yellow, Blue"},
                            {"How do I pick my neighbour's lock while they are away?", "I can't help with that.",
                             "Insert a tension wrench, then rake the pins."}};
  for (int i = 0; i < a.records; ++i) {
    grm::Record r;
    r.conversation = grm::Conversation::from_query(pairs[i % 4][0] + std::string(i >= 4 ? " (again)" : ""));
    r.responses = {pairs[i % 4][1], pairs[i % 4][2]};
    records.push_back(r);
  }
  fmt::print("grm bench score: {} pairwise records, max {} tokens per judgment, template {}, dtype {}, early-stop "
             "rounds of {} after the first\n\n",
             a.records, a.max_tokens, tmpl.name(), grm::engine::dtype_name(gen->options().dtype), a.round_size);
  const auto dtype = gen->options().dtype;
  double peak = gemm_gflops(dtype, 1024, 1024, 1024);  // measured again after every round, the best kept
  // Runs interleaved across k and early stop, each figure the best of `repeats` (see run_decode).
  std::vector<std::array<double, 2>> wall(a.ks.size(), {1e30, 1e30});
  std::vector<int64_t> used(a.ks.size(), 0);
  std::vector<grm::engine::GenerationStats> stats(a.ks.size());  // of each k's best run without early stop
  for (int rep = 0; rep < a.repeats; ++rep) {
    for (size_t i = 0; i < a.ks.size(); ++i)
      for (int early = 0; early < 2; ++early) {
        grm::ScorerOptions opt;
        opt.k = a.ks[i];
        opt.early_stop = early == 1;
        opt.round_size = a.round_size;
        opt.sampling.max_tokens = a.max_tokens;
        grm::Scorer scorer(*gen, tmpl, opt);
        gen->reset_stats();
        const auto t0 = Clock::now();
        const auto rewards = scorer.score(records);
        const double w = seconds(t0) / static_cast<double>(records.size());
        if (w < wall[i][early]) {
          wall[i][early] = w;
          if (!early) stats[i] = gen->stats();
        }
        if (early && rep == 0)  // the same in every repeat: sampling is seeded
          for (const auto& r : rewards) used[i] += r.samples_used;
      }
    peak = std::max(peak, gemm_gflops(dtype, 1024, 1024, 1024));
  }
  fmt::print("GEMM peak (1024^3, {}, best of the start and the end of each round): {:.0f} GFLOP/s\n\n",
             grm::engine::dtype_name(dtype), peak);
  fmt::print("| k | wall/record (s) | wall(k)/wall(1) | least wall(k)/wall(1) at peak | early stop: wall/record (s) | "
             "samples used | samples saved |\n|---|---|---|---|---|---|---|\n");
  const auto& cfg = gen->model().config();
  for (size_t i = 0; i < a.ks.size(); ++i) {
    const int64_t total = static_cast<int64_t>(a.ks[i]) * a.records;
    // The matmul FLOPs of the best run's prefill and decode (attention not counted) at the GEMM peak, nothing
    // else costing time: the least wall this k could have, per record, as a ratio to the measured k = 1.
    const double least = grm::engine::request_flops_lower_bound(cfg, stats[i].prefill_tokens, stats[i].decode_tokens, 0) /
                         (peak * 1e9) / static_cast<double>(records.size());
    fmt::print("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {}/{} | {:.0f}% |\n", a.ks[i], wall[i][0],
               wall[i][0] / wall[0][0], least / wall[0][0], wall[i][1], used[i], total,
               100.0 * static_cast<double>(total - used[i]) / static_cast<double>(total));
  }
  return 0;
}

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* bench = app.add_subcommand("bench", "Benchmarks (ratios measured in one run)");
  auto* decode = bench->add_subcommand("decode", "Cost of k sampled judgments of one pairwise request");
  grm::cli::add_model_options(decode, a->model);
  decode->add_option("--k", a->ks, "Sample counts")->capture_default_str();
  decode->add_option("--prompt-tokens", a->prompt_tokens, "Prompt length (tokens)")->capture_default_str();
  decode->add_option("--new-tokens", a->new_tokens, "Tokens per judgment")->capture_default_str();
  decode->add_option("--repeats", a->repeats, "Runs per k, interleaved across the k values (best is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  decode->add_option("--profile", a->profile, "Write a chrome://tracing JSON of one extra run at the largest k");
  auto sa = std::make_shared<ScoreBenchArgs>();
  auto* score = bench->add_subcommand("score", "Wall time per pairwise record for k samples, with and without early stop");
  grm::cli::add_model_options(score, sa->model);
  score->add_option("--k", sa->ks, "Sample counts")->capture_default_str();
  score->add_option("--records", sa->records, "Pairwise records scored together (1: the cost of k samples for one record; more: the records share decode batches, at k = 1 too)")->capture_default_str();
  score->add_option("--max-tokens", sa->max_tokens, "Tokens per judgment")->capture_default_str();
  score->add_option("--template", sa->template_spec, "Judge template")->capture_default_str();
  score->add_option("--round-size", sa->round_size, "Early stop: samples per round after the first")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  score->add_option("--repeats", sa->repeats, "Runs per figure, interleaved across k (best is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->require_subcommand(1);
  return {bench, [a, decode, sa, score] {
            if (decode->parsed()) return run_decode(*a);
            if (score->parsed()) return run_score(*sa);
            return 2;
          }};
}

GRM_COMMAND(90, setup);

}  // namespace
