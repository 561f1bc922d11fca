// decide() for facts that must yield a verdict rather than "grade again later".
#pragma once

#include <gtest/gtest.h>

#include "grading/verdict.hpp"

namespace xqw::grading {

inline Outcome decided(const RunFacts& facts, const LimitsForMessages& limits,
                       const MessageOverrides& overrides, const ParseLimits& parse_limits = {}) {
  auto outcome = decide(facts, limits, overrides, parse_limits);
  EXPECT_TRUE(outcome.has_value()) << "grade again: " << (outcome ? "" : outcome.error().reason);
  return outcome ? *outcome : Outcome{};
}

}  // namespace xqw::grading
