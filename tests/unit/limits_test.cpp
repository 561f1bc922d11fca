#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"

namespace xqw::config {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// The reason parse_* gives for `text`, or "" when it parses.
template <typename Parse>
std::string reason(Parse parse, std::string_view text) {
  const auto parsed = parse(text);
  return parsed ? "" : parsed.error();
}

TEST(LimitBytes, ReadsBinaryAndDecimalUnits) {
  EXPECT_EQ(parse_bytes("256Mi"), 256LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("1Gi"), 1024LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("512Ki"), 512LL * 1024);
  EXPECT_EQ(parse_bytes("2MiB"), 2LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes("512k"), 512000);
  EXPECT_EQ(parse_bytes("64MB"), 64000000);
  EXPECT_EQ(parse_bytes("1G"), 1000000000);
  EXPECT_EQ(parse_bytes("1048576"), 1048576);
  EXPECT_EQ(parse_bytes("1.5Gi"), 1536LL * 1024 * 1024);
  EXPECT_EQ(parse_bytes(" 256 Mi "), 256LL * 1024 * 1024);
}

TEST(LimitBytes, RefusesWhatItCannotReadAndSaysWhy) {
  EXPECT_THAT(reason(parse_bytes, "256Q"), HasSubstr("unknown unit 'Q'"));
  EXPECT_THAT(reason(parse_bytes, "512m"), HasSubstr("ambiguous"));
  EXPECT_THAT(reason(parse_bytes, "-1Mi"), HasSubstr("without a sign"));
  EXPECT_THAT(reason(parse_bytes, "Mi"), HasSubstr("is not a size"));
  EXPECT_THAT(reason(parse_bytes, "1.2.3Mi"), HasSubstr("is not a size"));
  EXPECT_THAT(reason(parse_bytes, ""), HasSubstr("required"));
  EXPECT_THAT(reason(parse_bytes, "99999999999Ti"), HasSubstr("too large"));
}

TEST(LimitCpus, ReadsFractionsWholeNumbersAndMillicores) {
  EXPECT_DOUBLE_EQ(parse_cpus("0.5").value_or(-1.0), 0.5);
  EXPECT_DOUBLE_EQ(parse_cpus("2").value_or(-1.0), 2.0);
  EXPECT_DOUBLE_EQ(parse_cpus("500m").value_or(-1.0), 0.5);
  EXPECT_DOUBLE_EQ(parse_cpus("1500m").value_or(-1.0), 1.5);
}

TEST(LimitCpus, RefusesZeroNegativeAndUnknownUnits) {
  EXPECT_THAT(reason(parse_cpus, "0"), HasSubstr("must be more than 0"));
  EXPECT_THAT(reason(parse_cpus, "0m"), HasSubstr("must be more than 0"));
  EXPECT_THAT(reason(parse_cpus, "-1"), HasSubstr("without a sign"));
  EXPECT_THAT(reason(parse_cpus, "2x"), HasSubstr("unknown unit 'x'"));
  EXPECT_THAT(reason(parse_cpus, "half"), HasSubstr("is not a CPU count"));
}

TEST(LimitDuration, ReadsUnitsCompoundsAndBareSeconds) {
  EXPECT_EQ(parse_duration("20s"), milliseconds(20000));
  EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120000));
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("1m30s"), milliseconds(90000));
  EXPECT_EQ(parse_duration("1m 30s"), milliseconds(90000));
  EXPECT_EQ(parse_duration("20"), milliseconds(20000));  // upstream's "timeout": 20
  EXPECT_EQ(parse_duration("0.25"), milliseconds(250));
}

TEST(LimitDuration, RefusesWhatItCannotRead) {
  EXPECT_THAT(reason(parse_duration, "20x"), HasSubstr("unknown unit 'x'"));
  EXPECT_THAT(reason(parse_duration, "s"), HasSubstr("is not a duration"));
  EXPECT_THAT(reason(parse_duration, "1m 30"), HasSubstr("is not a duration"));
  EXPECT_THAT(reason(parse_duration, "-5s"), HasSubstr("without a sign"));
  EXPECT_THAT(reason(parse_duration, ""), HasSubstr("required"));
}

TEST(LimitCount, ReadsWholeNumbersOnly) {
  EXPECT_EQ(parse_count("128"), 128);
  EXPECT_THAT(reason(parse_count, "1e3"), HasSubstr("not a whole number"));
  EXPECT_THAT(reason(parse_count, "12.5"), HasSubstr("not a whole number"));
  EXPECT_THAT(reason(parse_count, "-1"), HasSubstr("without a sign"));
}

TEST(LimitFormat, WritesLimitsForPeople) {
  EXPECT_EQ(format_bytes(256 * MiB), "256 MiB");
  EXPECT_EQ(format_bytes(3 * GiB / 2), "1.5 GiB");
  EXPECT_EQ(format_bytes(64 * KiB), "64 KiB");
  EXPECT_EQ(format_bytes(900), "900 bytes");
  EXPECT_EQ(format_duration_as_written(milliseconds(20000)), "20s");
  EXPECT_EQ(format_duration_as_written(milliseconds(90000)), "1m30s");
  EXPECT_EQ(format_duration_as_written(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_duration_as_written(milliseconds(500)), "500ms");
  EXPECT_EQ(format_duration_as_written(milliseconds(3600000)), "1h");
  EXPECT_EQ(format_cpus(0.5), "0.5");
  EXPECT_EQ(format_cpus(2), "2");
}

TEST(LimitFormat, FormattedValuesParseBackToThemselves) {
  for (const std::int64_t bytes : {1 * MiB, 256 * MiB, 64 * KiB, 2 * GiB, std::int64_t{900}}) {
    EXPECT_EQ(parse_bytes(format_bytes(bytes)), bytes);
  }
  for (const int ms : {500, 1500, 20000, 90000, 3600000}) {
    EXPECT_EQ(parse_duration(format_duration_as_written(milliseconds(ms))), milliseconds(ms));
  }
}

}  // namespace
}  // namespace xqw::config
