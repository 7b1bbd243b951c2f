// A deterministic fake judge for scorer and eval tests (no torch). Responses carry "quality=Q"; the judge
// reads the shown responses back out of the prompt and scores each Q, plus `position_bonus` for the response
// shown first, plus seeded noise when sampling (temperature > 0), clamped to 1..10. With the single-binary
// template (the prompt asks for "0 or 1") it answers 1 when that score is ≥ 5, else 0. Every
// `invalid_every`-th sample (by sample index) is unparseable.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/generator.h"
#include "core/rng.h"

namespace grm::test {

class FakeJudge : public Generator {
 public:
  int position_bonus = 0;   // added to the response shown first
  int noise = 0;            // ± uniform noise from the sample's seed
  int invalid_every = 0;
  int calls = 0;            // generate() calls
  int64_t completions = 0;
  int64_t fail_after = -1;  // throw after this many completions (simulates an interrupted run)

  std::vector<std::vector<Completion>> generate(const std::vector<GenerationRequest>& reqs) override {
    ++calls;
    std::vector<std::vector<Completion>> out;
    for (const auto& r : reqs) {
      const bool binary = r.prompt.find("0 or 1") != std::string::npos;
      std::vector<int> q;
      size_t pos = 0;
      while ((pos = r.prompt.find("quality=", pos)) != std::string::npos) {
        q.push_back(std::stoi(r.prompt.substr(pos + 8)));
        pos += 8;
      }
      out.emplace_back();
      for (int i = 0; i < r.n; ++i) {
        if (fail_after >= 0 && completions >= fail_after) throw std::runtime_error("fake judge interrupted");
        ++completions;
        const int j = r.first_index + i;
        Rng rng(derive_seed(r.params.seed, static_cast<uint64_t>(j)));
        Completion c;
        if (invalid_every > 0 && j % invalid_every == invalid_every - 1) {
          c.text = "I cannot decide.";
        } else {
          std::string scores;
          for (size_t p = 0; p < q.size(); ++p) {
            int s = q[p] + (p == 0 ? position_bonus : 0);
            if (noise && r.params.temperature > 0) s += static_cast<int>(rng.below(2 * noise + 1)) - noise;
            s = binary ? (s >= 5 ? 1 : 0) : std::clamp(s, 1, 10);
            scores += (p ? ", " : "") + std::to_string(s);
          }
          c.text = "Specific Criteria: Quality (Weight: 100%)\nAnalysis: read the qualities.\nScores: \\boxed{" +
                   scores + "}";
        }
        out.back().push_back(c);
      }
    }
    return out;
  }
};

}  // namespace grm::test
