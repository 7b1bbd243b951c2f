#include "core/jsonl.h"

#include <gtest/gtest.h>

#include <sstream>

#include "core/error.h"
#include "core/utf8.h"

using namespace grm;

TEST(Utf8, ValidAndInvalid) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xC0\xAF"), 0u);          // overlong
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xE2\x82"), 0u);          // truncated
}

TEST(Jsonl, ReportsLineNumbers) {
  std::istringstream in("{\"a\":1}\n\n{\"a\":2}\n{bad\n");
  std::vector<int> seen;
  try {
    for_each_jsonl(in, "f.jsonl", [&](size_t, const nlohmann::json& v) { seen.push_back(v["a"].get<int>()); });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:4:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

TEST(Jsonl, InvalidUtf8AndCallbackErrorsNameTheLine) {
  std::istringstream in("{\"a\":\"\xff\"}\n");
  EXPECT_THROW(for_each_jsonl(in, "x", [](size_t, const nlohmann::json&) {}), Error);
  std::istringstream in2("1\n2\n");
  try {
    for_each_jsonl(in2, "y", [](size_t line, const nlohmann::json&) {
      if (line == 2) throw Error("boom");
    });
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "y:2: boom");
  }
}

TEST(Jsonl, DumpReplacesInvalidUtf8) {
  nlohmann::json j = std::string("a\xff");
  EXPECT_EQ(dump_json(j), "\"a\xEF\xBF\xBD\"");
}
