#include "core/chat_template.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ChatTemplateTest, RendersEachMessageByItsRoleThenTheGenerationPrompt) {
  ChatTemplate t;
  t.system = "S[{content}]";
  t.user = "U[{content}]";
  t.assistant = "A[{content}]";
  t.generation_prompt = "A[";
  Result<std::string> prompt = t.Render({{"system", "be brief"},
                                         {"user", "hi"},
                                         {"assistant", "hello"},
                                         {"developer", "dev"},
                                         {"user", "{content} stays as sent"}});
  ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
  EXPECT_EQ(*prompt, "S[be brief]U[hi]A[hello]S[dev]U[{content} stays as sent]A[");
}

TEST(ChatTemplateTest, TheDefaultIsChatMlLike) {
  Result<std::string> prompt = ChatTemplate().Render({{"user", "hi"}});
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(*prompt, "<|user|>\nhi\n<|assistant|>\n");
}

TEST(ChatTemplateTest, AnUnknownRoleNamesTheMessage) {
  Result<std::string> prompt = ChatTemplate().Render({{"user", "hi"}, {"tool", "42"}});
  ASSERT_FALSE(prompt.ok());
  EXPECT_EQ(prompt.status().message(),
            "messages[1].role: must be system, developer, user or assistant");
}

TEST(ChatTemplateTest, EachRoleFormatNeedsContentExactlyOnce) {
  EXPECT_TRUE(ChatTemplate().Validate().ok());
  ChatTemplate missing;
  missing.user = "U: ";
  EXPECT_EQ(missing.Validate().message(), "user: must contain {content} exactly once");
  ChatTemplate twice;
  twice.assistant = "{content}{content}";
  EXPECT_EQ(twice.Validate().message(), "assistant: must contain {content} exactly once");
}

}  // namespace
}  // namespace sluice
