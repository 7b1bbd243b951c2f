#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "eval/store.h"

using namespace grm;
using namespace grm::eval;

namespace {

std::string temp_path(const std::string& name) {
  const auto p = std::filesystem::path(testing::TempDir()) / ("grm_eval_store_" + name);
  std::filesystem::remove(p);
  return p.string();
}

StoredItem item(const std::string& key) {
  StoredItem s;
  s.bench = "rmb";
  s.key = key;
  s.n = 3;
  s.best = 2;
  s.strict = true;
  s.groups = {{"category", "Helpfulness"}, {"kind", "BoN"}};
  s.samples.push_back({{2, 0, 1}, {3, 4, 9}, true, "", 1.5});
  s.samples.push_back({{0, 1, 2}, {}, false, "no boxed scores", std::nullopt});
  return s;
}

}  // namespace

TEST(EvalStore, RoundTrip) {
  const StoredItem a = item("k1");
  const StoredItem b = stored_item_from_json(to_json(a));
  EXPECT_EQ(b.bench, "rmb");
  EXPECT_EQ(b.key, "k1");
  EXPECT_EQ(b.best, 2);
  EXPECT_TRUE(b.strict);
  EXPECT_EQ(b.groups, a.groups);
  ASSERT_EQ(b.samples.size(), 2u);
  EXPECT_EQ(b.samples[0].order, (std::vector<int>{2, 0, 1}));
  EXPECT_EQ(b.samples[0].scores, (std::vector<int>{3, 4, 9}));
  EXPECT_EQ(*b.samples[0].meta, 1.5);
  EXPECT_FALSE(b.samples[1].valid);
  EXPECT_EQ(b.samples[1].error, "no boxed scores");
  StoredSource s;
  s.bench = "rmb";
  s.file = "rmb_bon";
  s.k_max = 8;
  s.excluded = 3;
  const StoredSource t = stored_source_from_json(to_json(s));
  EXPECT_EQ(t.file, "rmb_bon");
  EXPECT_EQ(t.k_max, 8);
  EXPECT_EQ(t.excluded, 3u);
}

TEST(EvalStore, RejectsBadItems) {
  auto j = to_json(item("k"));
  j["samples"][0]["scores"] = {3, 4};
  EXPECT_THROW(stored_item_from_json(j), std::exception);
  j = to_json(item("k"));
  j["samples"][0]["scores"] = {3, 4, 11};
  EXPECT_THROW(stored_item_from_json(j), std::exception);
  j = to_json(item("k"));
  j["bench"] = "nosuch";
  EXPECT_THROW(stored_item_from_json(j), std::exception);
}

TEST(EvalStore, TruncatedTailIsIgnoredAndCutOffBeforeAppending) {
  const std::string path = temp_path("tail.jsonl");
  EXPECT_TRUE(read_store(path).items.empty());  // a missing file is empty
  {
    StoreWriter w(path, 0);
    w.append(to_json(item("a")));
    w.append(to_json(item("b")));
  }
  const std::string line_c = to_json(item("c")).dump();
  { std::ofstream(path, std::ios::app) << line_c.substr(0, line_c.size() / 2); }  // an interrupted write
  StoreContents c = read_store(path);
  EXPECT_EQ(c.items.size(), 2u);
  EXPECT_TRUE(c.truncated_tail);
  EXPECT_TRUE(c.errors.empty());
  {
    StoreWriter w(path, c.complete_bytes);
    w.append(to_json(item("c")));
  }
  c = read_store(path);
  ASSERT_EQ(c.items.size(), 3u);
  EXPECT_EQ(c.items[2].key, "c");
  EXPECT_FALSE(c.truncated_tail);
}

TEST(EvalStore, BadLineInTheMiddleIsReportedAndSkipped) {
  const std::string path = temp_path("bad.jsonl");
  {
    std::ofstream out(path);
    out << to_json(item("a")).dump() << "\n{not json\n" << to_json(item("b")).dump() << "\n";
  }
  const StoreContents c = read_store(path);
  EXPECT_EQ(c.items.size(), 2u);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].find(":2:"), std::string::npos) << c.errors[0];
}
