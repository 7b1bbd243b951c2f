// Writing evaluation results: results.json, results.md, scaling.png / scaling.svg (gnuplot). Every file is
// written atomically (a temporary file in the same directory, then rename).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "core/fs.h"  // write_file_atomic
#include "eval/results.h"

namespace grm::eval {


// results.json: {"config": <config>, "units": "percent", "ks": [..], "benchmarks": {name: {n, rows, excluded,
// malformed, samples, invalid_samples, voting: {"1": x, ..}, ci95: {"1": [lo, hi], ..}, metarm?, metarm_ci95?,
// greedy?, greedy_ci95?, sub_scores: {group: {name: {voting, ci95, metarm?, metarm_ci95?, greedy?, greedy_ci95?}}}}},
// "overall": {benchmarks: [..], voting, ci95, metarm?, metarm_ci95?, greedy?, greedy_ci95?}, "warnings": [..]}.
// Numbers are percentages; an undefined number is null.
nlohmann::json results_json(const EvalResults& r, const nlohmann::json& config);

// A readable Markdown report of the same numbers.
std::string results_markdown(const EvalResults& r, const nlohmann::json& config);

// Renders scaling.png and scaling.svg into `dir` with gnuplot (one panel per benchmark plus Overall: metric vs
// k on a log2 axis, Voting / MetaRM / greedy with CI bands). Keeps the generated scaling.gp and scaling.dat
// beside them. Returns "" on success, else why nothing was drawn (no gnuplot, no data, gnuplot failed).
std::string render_plots(const EvalResults& r, const std::string& dir, const std::string& gnuplot = "gnuplot");

}  // namespace grm::eval
