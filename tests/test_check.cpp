// Error messages that name a job's options: the field name in what(), the flag on the command line.
#include <gtest/gtest.h>

#include "core/check.h"

namespace cuvae {
namespace {

std::string thrown(FieldStyle style) {
  try {
    CUVAE_FAIL(option("kl_warmup") << " and " << option("epochs") << " disagree: got 3 and 2");
  } catch (const Error& e) {
    return style == FieldStyle::Name ? std::string(e.what()) : e.message(style);
  }
  return "nothing thrown";
}

TEST(OptionNames, WhatNamesTheFieldAndTheCommandLineTheFlag) {
  EXPECT_EQ(thrown(FieldStyle::Name), "kl_warmup and epochs disagree: got 3 and 2");
  EXPECT_EQ(thrown(FieldStyle::Flag), "--kl-warmup and --epochs disagree: got 3 and 2");
}

TEST(OptionNames, MessagesWithoutOptionsAreUnchangedAndUnderscoresOutsideNamesStay) {
  const Error e("data/mnist_x: bad header");
  EXPECT_STREQ(e.what(), "data/mnist_x: bad header");
  EXPECT_EQ(e.message(FieldStyle::Flag), "data/mnist_x: bad header");
  EXPECT_EQ(render_options("a_b \x1f" "test_limit\x1f c_d", FieldStyle::Flag), "a_b --test-limit c_d");
}

}  // namespace
}  // namespace cuvae
