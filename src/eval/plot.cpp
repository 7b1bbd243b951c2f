// scaling.png / scaling.svg: one gnuplot panel per benchmark plus Overall, metric vs k on a log2 axis.
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/report.h"

namespace grm::eval {

namespace {

namespace fs = std::filesystem;

struct Panel {
  std::string title, ylabel;
  std::map<Method, std::map<int, Estimate>> lines;  // greedy at k = 1, drawn flat
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string gp_quote(const std::string& s) {  // a gnuplot single-quoted string
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", 100 * v) : "?"; }

std::vector<Panel> panels(const EvalResults& r) {
  static const std::map<std::string, std::string> titles = {
      {kRewardBench, "RewardBench"}, {kPpePref, "PPE Preference"}, {kPpeCorrect, "PPE Correctness"},
      {kRmb, "RMB"},                 {kReaLMistake, "ReaLMistake"},  {kSynth, "synth"}};
  std::vector<Panel> ps;
  if (!r.overall.empty()) {
    Panel p{"Overall (mean of " + std::to_string(r.overall_benches.size()) + ")", "score (%)", r.overall};
    ps.push_back(std::move(p));
  }
  for (const auto& b : r.benches) {
    Panel p;
    p.title = titles.count(b.bench) ? titles.at(b.bench) : b.bench;
    p.title += fmt::format(" (n = {})", b.n);
    p.ylabel = b.bench == kReaLMistake ? "ROC-AUC (%)" : b.bench == kRewardBench || b.bench == kRmb ? "score (%)"
                                                                                                    : "accuracy (%)";
    for (const auto& [m, curve] : b.curves)
      for (const auto& [k, nums] : curve)
        if (const auto it = nums.find("score"); it != nums.end()) p.lines[m][k] = it->second;
    ps.push_back(std::move(p));
  }
  return ps;
}

}  // namespace

std::string render_plots(const EvalResults& r, const std::string& dir, const std::string& gnuplot) {
  const std::vector<Panel> ps = panels(r);
  if (ps.empty()) return "no results to plot";
  std::vector<int> ks = r.ks;
  if (ks.empty()) ks = {1};
  const fs::path d = fs::absolute(dir);
  // Data: one block per panel: k, voting lo hi, metarm lo hi, greedy lo hi.
  std::ostringstream dat;
  for (size_t i = 0; i < ps.size(); ++i) {
    dat << "# " << ps[i].title << "\n# k voting lo hi metarm lo hi greedy lo hi\n";
    for (int k : ks) {
      dat << k;
      for (Method m : {Method::Voting, Method::MetaRM, Method::Greedy}) {
        Estimate e{NAN, NAN, NAN};
        if (const auto l = ps[i].lines.find(m); l != ps[i].lines.end()) {
          const auto it = l->second.find(m == Method::Greedy ? 1 : k);
          if (it != l->second.end()) e = it->second;
        }
        dat << ' ' << num(e.value) << ' ' << num(e.lo) << ' ' << num(e.hi);
      }
      dat << "\n";
    }
    dat << "\n\n";
  }
  const std::string dat_path = (d / "scaling.dat").string();
  write_file_atomic(dat_path, dat.str());

  const int cols = static_cast<int>(std::min<size_t>(ps.size(), 3));
  const int rows = static_cast<int>((ps.size() + 2) / 3);
  std::string xtics;
  for (int k : ks) xtics += fmt::format("{}{}", xtics.empty() ? "" : ", ", k);
  std::string body = fmt::format(
      "set multiplot layout {},{} title 'grm eval: metric vs k (bands: 95% bootstrap CI)'\n"
      "set logscale x 2\nset xrange [{}:{}]\nset xtics ({})\nset grid\nset datafile missing '?'\n"
      "set xlabel 'k (sampled judgments, log2 scale)'\nset key bottom right font ',9'\n"
      "set style fill transparent solid 0.18 noborder\nset offsets graph 0, 0, 0.06, 0.06\n",
      rows, cols, ks.front() / 1.3, ks.back() * 1.3, xtics);
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c"};
  const char* names[] = {"Voting@k", "MetaRM@k", "greedy (T=0)"};
  for (size_t i = 0; i < ps.size(); ++i) {
    body += fmt::format("set title {}\nset ylabel {}\nplot ", gp_quote(ps[i].title), gp_quote(ps[i].ylabel));
    std::vector<std::string> parts;
    int col = 2;
    for (Method m : {Method::Voting, Method::MetaRM, Method::Greedy}) {
      const int mi = col == 2 ? 0 : col == 5 ? 1 : 2;
      const auto l = ps[i].lines.find(m);
      if (l != ps[i].lines.end() && !l->second.empty()) {
        bool has_ci = false;
        for (const auto& [k, e] : l->second) has_ci |= std::isfinite(e.lo);
        const std::string src = fmt::format("{} index {}", gp_quote(dat_path), i);
        if (has_ci)
          parts.push_back(fmt::format("{} using 1:{}:{} with filledcurves lc rgb '{}' notitle", src, col + 1, col + 2,
                                      colors[mi]));
        parts.push_back(fmt::format("{} using 1:{} with {} lc rgb '{}' lw 2 {} title '{}'", src, col,
                                    m == Method::Greedy ? "lines" : "linespoints", colors[mi],
                                    m == Method::Greedy ? "dt 2" : "pt 7 ps 0.8", names[mi]));
      }
      col += 3;
    }
    if (parts.empty()) parts.push_back("NaN notitle");
    for (size_t p = 0; p < parts.size(); ++p) body += (p ? ", \\\n     " : "") + parts[p];
    body += "\n";
  }
  body += "unset multiplot\n";
  const std::string png_tmp = (d / ".scaling.png.tmp").string(), svg_tmp = (d / ".scaling.svg.tmp").string();
  const int w = 520 * cols, h = 400 * rows + 40;
  const std::string script =
      fmt::format("set terminal pngcairo size {},{} font 'Sans,10' noenhanced\nset output {}\n{}"
                  "set output\nset terminal svg size {},{} dynamic font 'Sans,10' noenhanced\nset output {}\n{}set output\n",
                  w, h, gp_quote(png_tmp), body, w, h, gp_quote(svg_tmp), body);
  const std::string gp_path = (d / "scaling.gp").string();
  write_file_atomic(gp_path, script);
  const std::string log = (d / ".gnuplot.log").string();
  const int status = std::system((shell_quote(gnuplot) + " " + shell_quote(gp_path) + " >" + shell_quote(log) + " 2>&1").c_str());
  std::string err;
  {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    err = ss.str();
  }
  std::error_code ec;
  fs::remove(log, ec);
  const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc != 0) {
    fs::remove(png_tmp, ec);
    fs::remove(svg_tmp, ec);
    if (rc == 127) return "gnuplot not found (install gnuplot to get scaling.png / scaling.svg)";
    return "gnuplot failed: " + err.substr(0, 500);
  }
  fs::rename(png_tmp, d / "scaling.png", ec);
  if (!ec) fs::rename(svg_tmp, d / "scaling.svg", ec);
  if (ec) return "cannot move the plots into place: " + ec.message();
  return "";
}

}  // namespace grm::eval
