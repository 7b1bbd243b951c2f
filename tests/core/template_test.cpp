#include "core/template.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/parse.h"

using namespace grm;

TEST(Template, BuiltinsLoadAndRenderThePaperStructure) {
  for (const char* name : {"default", "compact"}) {
    Template t = Template::builtin(name);
    Conversation c;
    c.messages = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "What is 2+2?"}};
    const std::string p = t.render(c, {"4", "5"});
    EXPECT_NE(p.find("#### Conversation Context ####"), std::string::npos) << name;
    EXPECT_NE(p.find("#### Responses to be Scored ####"), std::string::npos) << name;
    EXPECT_NE(p.find("#### Output Format Requirements ####"), std::string::npos) << name;
    EXPECT_NE(p.find("[The Begin of Response 1]\n4\n[The End of Response 1]"), std::string::npos) << name;
    EXPECT_NE(p.find("[The Begin of Response 2]\n5\n[The End of Response 2]"), std::string::npos) << name;
    EXPECT_NE(p.find("User: Hi\n\nAssistant: Hello!\n\nUser: What is 2+2?"), std::string::npos) << name;
    EXPECT_NE(p.find("Scores: \\boxed{"), std::string::npos) << name;
    EXPECT_EQ(p.find("{{"), std::string::npos) << name;
    EXPECT_EQ(t.range().lo, 1);
    EXPECT_EQ(t.range().hi, 10);
  }
  EXPECT_NE(Template::builtin("default").render(Conversation::from_query("q"), {"a"}).find("9-10"), std::string::npos);
}

TEST(Template, SingleBinaryModeHasRangeZeroOne) {
  Template t = Template::builtin("single-binary");
  EXPECT_EQ(t.range().lo, 0);
  EXPECT_EQ(t.range().hi, 1);
  EXPECT_EQ(t.render(Conversation::from_query("q"), {"a"}).rfind("%%", 0), std::string::npos);
}

TEST(Template, PlaceholdersAndOptions) {
  Template t = Template::from_string("%% score_min: 2\n%% score_max: 7\nQ={{query}} n={{n}} [{{score_min}}-{{score_max}}]\n{{responses}}", "t");
  EXPECT_EQ(t.render(Conversation::from_query("why?"), {"x"}),
            "Q=why? n=1 [2-7]\n[The Begin of Response 1]\nx\n[The End of Response 1]");
  EXPECT_EQ(t.range().lo, 2);
}

TEST(Template, Errors) {
  EXPECT_THROW(Template::from_string("{{conversation}}", "t"), Error);             // no responses
  EXPECT_THROW(Template::from_string("{{responses}}", "t"), Error);                // no context
  EXPECT_THROW(Template::from_string("{{query}}{{responses}}{{oops}}", "t"), Error);
  EXPECT_THROW(Template::from_string("{{query}}{{responses}}{{n", "t"), Error);
  EXPECT_THROW(Template::from_string("%% colour: red\n{{query}}{{responses}}", "t"), Error);
  EXPECT_THROW(Template::from_string("%% score_min: 5\n%% score_max: 5\n{{query}}{{responses}}", "t"), Error);
  EXPECT_THROW(Template::from_string("%% score_min: x\n{{query}}{{responses}}", "t"), Error);
  EXPECT_THROW(Template::load("/nonexistent/t.txt"), Error);
  EXPECT_THROW(Template::builtin("nope"), Error);
  EXPECT_THROW(Template::from_string(std::string("{{query}}{{responses}}\xff"), "t"), Error);
  try {
    Template::from_string("{{query}}{{responses}}{{oops}}", "my.txt");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my.txt"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("oops"), std::string::npos);
  }
}

TEST(Template, ConversationQueryAndHistory) {
  Conversation c;
  c.messages = {{"system", "be nice"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}};
  EXPECT_EQ(c.query(), "c");
  EXPECT_EQ(c.history().size(), 3u);
  Conversation none;
  none.messages = {{"assistant", "x"}};
  EXPECT_THROW(none.query(), Error);
}
