// The one registry of verdicts (verdicts/) and the one table of per-queue limits (config): consistent in
// themselves, with the configuration schema, with the Helm chart's values.schema.json and with the docs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"
#include "grading/verdict.hpp"
#include "verdicts/verdicts.hpp"

namespace xqw::verdicts {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string source_file(const std::string& relative) {
  std::ifstream in(fs::path(XQW_SOURCE_DIR) / relative, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << relative;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::set<std::string> all_labels() {
  std::set<std::string> labels;
  for (const auto& info : kVerdicts) labels.emplace(info.label);
  return labels;
}

std::set<std::string> overridable_labels() { return {kOverridableLabels.begin(), kOverridableLabels.end()}; }

std::set<std::string> limit_keys() {
  std::set<std::string> keys;
  for (const auto& field : config::limit_fields()) keys.emplace(field.key);
  return keys;
}

// ---- the registry in itself ----

TEST(VerdictRegistry, LabelsAreUniqueAndRoundTrip) {
  EXPECT_EQ(all_labels().size(), kVerdicts.size());
  for (const auto& info : kVerdicts) {
    EXPECT_EQ(label(info.verdict), info.label);
    EXPECT_EQ(from_label(info.label), info.verdict) << info.label;
    EXPECT_EQ(grading::verdict_label(info.verdict), info.label);
    EXPECT_EQ(grading::verdict_from_label(info.label), info.verdict);
    EXPECT_TRUE(std::regex_match(std::string(info.label), std::regex("[a-z][a-z_]*"))) << info.label;
  }
  EXPECT_FALSE(from_label("").has_value());
  EXPECT_FALSE(from_label("Timeout").has_value());
  EXPECT_EQ(label(static_cast<Verdict>(kVerdicts.size())), "unknown");
}

TEST(VerdictRegistry, OverridableLabelsAreTheOverridableRowsInOrder) {
  std::vector<std::string_view> expected;
  for (const auto& info : kVerdicts) {
    if (info.overridable) expected.push_back(info.label);
  }
  EXPECT_EQ(std::vector<std::string_view>(kOverridableLabels.begin(), kOverridableLabels.end()), expected);
  EXPECT_EQ(&config::kMessageVerdicts, &kOverridableLabels);
  EXPECT_FALSE(find(Verdict::Graded)->overridable);
  EXPECT_FALSE(find(Verdict::InfrastructureError)->overridable);
}

TEST(VerdictRegistry, EveryFailureHasStudentTextAndAFallbackForEachPlaceholder) {
  for (const auto& info : kVerdicts) {
    if (info.verdict == Verdict::Graded) {
      EXPECT_TRUE(info.text.empty());  // the grader's own result is what students read
      continue;
    }
    EXPECT_FALSE(info.text.empty()) << info.label;
    const bool placeholder = info.text.find('{') != std::string_view::npos;
    EXPECT_EQ(placeholder, !info.text_unquoted.empty()) << info.label;
    EXPECT_EQ(info.text_unquoted.find('{'), std::string_view::npos) << info.label;
    // {limit} only where the row names a limit to quote.
    EXPECT_EQ(info.text.find("{limit}") != std::string_view::npos, !info.limit.empty()) << info.label;
    // Filled or not, no placeholder reaches a student.
    EXPECT_EQ(student_text(info.verdict, "", "").find('{'), std::string::npos) << info.label;
    EXPECT_EQ(student_text(info.verdict, "1 MiB", "exit code 2").find('{'), std::string::npos) << info.label;
  }
}

TEST(VerdictRegistry, StudentTextFillsTheLimitOrFallsBack) {
  EXPECT_EQ(student_text(Verdict::Timeout, "20 s"), "Your code did not finish within 20 s.");
  EXPECT_EQ(student_text(Verdict::Timeout, ""), "Your code did not finish in time.");
  EXPECT_EQ(student_text(Verdict::GraderError, "", "exit code 3"),
            "There was a problem running your code (Staff debug: exit code 3).");
  EXPECT_EQ(student_text(Verdict::GraderError, ""),
            "There was a problem running your code (Staff debug: grader error).");
  EXPECT_EQ(student_text(Verdict::Graded, "20 s"), "");
}

TEST(VerdictRegistry, EveryQuotedLimitIsALimitTheQueueHas) {
  const config::Limits defaults;
  for (const auto& info : kVerdicts) {
    if (info.limit.empty()) continue;
    if (info.limit == "files") continue;  // the `files:` caps, worded by grading::files_too_large
    const auto* field = config::limit_field(info.limit);
    ASSERT_NE(field, nullptr) << info.label << " quotes '" << info.limit << "', which is not a limits key";
    EXPECT_FALSE(config::quote_limit(defaults, info.limit).empty()) << info.label;
  }
  EXPECT_EQ(config::quote_limit(defaults, "timeout"), "20 s");
  EXPECT_EQ(config::quote_limit(defaults, "memory"), "256 MiB");
  EXPECT_EQ(config::quote_limit(defaults, "pids"), "128");
  EXPECT_EQ(config::quote_limit(defaults, "network"), "");
  EXPECT_EQ(config::quote_limit(config::Limits{.timeout = std::chrono::milliseconds(0)}, "timeout"), "");
}

// ---- the registry and the configuration schema ----

class VerdictMessages : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
  }
  config::LoadResult load_message(std::string_view label) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n    messages:\n      " +
                                     std::string(label) + ": 'Custom text ({limit}).'\n");
    return config::testing::load(root_.path());
  }
  config::testing::TempRoot root_;
};

TEST_F(VerdictMessages, EveryOverridableVerdictIsAccepted) {
  for (const auto label : kOverridableLabels) {
    const auto result = load_message(label);
    ASSERT_TRUE(result.ok()) << label << "\n" << config::testing::all_problems(result);
    EXPECT_EQ(result.config->queues.at(0).messages.at(std::string(label)), "Custom text ({limit}).");
  }
}

TEST_F(VerdictMessages, EveryOtherVerdictIsRefusedNamingTheKeyAndTheChoices) {
  for (const auto& info : kVerdicts) {
    if (info.overridable) continue;
    const auto result = load_message(info.label);
    ASSERT_FALSE(result.ok()) << info.label;
    const auto key = "queues.q.messages." + std::string(info.label);
    const auto* problem = config::testing::with_key(result.errors, key);
    ASSERT_NE(problem, nullptr) << config::testing::all_problems(result);
    EXPECT_THAT(problem->reason, HasSubstr("unknown verdict"));
    for (const auto label : kOverridableLabels) EXPECT_THAT(problem->reason, HasSubstr(std::string(label)));
  }
}

// ---- the chart's values.schema.json ----

class ChartSchema : public ::testing::Test {
 protected:
  void SetUp() override {
    schema_ = nlohmann::json::parse(source_file("helm/xqueue-watcher/values.schema.json"));
  }
  // The property names of the object schema at `pointer` (a JSON pointer), following a local "$ref".
  std::set<std::string> keys_at(const std::string& pointer) const {
    const nlohmann::json* node = &schema_.at(nlohmann::json::json_pointer(pointer));
    if (node->contains("$ref")) {
      const auto ref = node->at("$ref").get<std::string>();
      EXPECT_TRUE(ref.starts_with("#/")) << ref;
      node = &schema_.at(nlohmann::json::json_pointer(ref.substr(1)));
    }
    std::set<std::string> keys;
    for (const auto& [key, value] : node->at("properties").items()) keys.insert(key);
    return keys;
  }
  nlohmann::json schema_;
};

TEST_F(ChartSchema, MessageKeysAreTheOverridableVerdicts) {
  EXPECT_EQ(keys_at("/properties/defaults/properties/messages"), overridable_labels());
  EXPECT_EQ(keys_at("/properties/queues/additionalProperties/properties/messages"), overridable_labels());
}

TEST_F(ChartSchema, LimitKeysAreTheLimitsTable) {
  EXPECT_EQ(keys_at("/properties/defaults/properties/limits"), limit_keys());
  EXPECT_EQ(keys_at("/properties/queues/additionalProperties/properties/limits"), limit_keys());
}

TEST_F(ChartSchema, BoundKeysAreTheLimitsTablesBoundsAndFiles) {
  std::set<std::string> expected = {"files"};
  for (const auto& field : config::limit_fields()) {
    if (!field.bound_key.empty()) expected.emplace(field.bound_key);
  }
  EXPECT_EQ(keys_at("/properties/bounds"), expected);
}

// ---- the docs ----

// The first cells (`code` only) of the first Markdown table after `heading` in `document`, up to the
// next heading.
std::vector<std::string> first_column(const std::string& document, const std::string& heading) {
  const auto start = document.find(heading);
  EXPECT_NE(start, std::string::npos) << "no heading " << heading;
  if (start == std::string::npos) return {};
  std::istringstream lines(document.substr(start + heading.size()));
  std::vector<std::string> cells;
  static const std::regex kRow(R"(^\| `([^`]+)` \|.*)");
  bool in_table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#")) break;
    if (!line.starts_with("|")) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    std::smatch match;
    if (std::regex_match(line, match, kRow)) cells.push_back(match[1]);
  }
  return cells;
}

// The cells of the row of `key` in that table.
std::vector<std::string> row_of(const std::string& document, const std::string& heading,
                                const std::string& key) {
  const auto start = document.find(heading);
  std::istringstream lines(document.substr(start == std::string::npos ? 0 : start));
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `" + key + "` |")) continue;
    std::vector<std::string> cells;
    std::istringstream parts(line.substr(1));
    for (std::string cell; std::getline(parts, cell, '|');) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    return cells;
  }
  ADD_FAILURE() << "no row `" << key << "` after " << heading;
  return {};
}

TEST(VerdictDocs, TheVerdictTableListsEveryRegistryLabel) {
  const std::string document = source_file("docs/reliability.md");
  const std::string heading = "## Every run ends in a verdict";
  const auto rows = first_column(document, heading);
  EXPECT_EQ(rows.size(), std::set<std::string>(rows.begin(), rows.end()).size()) << "a label twice";
  // `infrastructure` is described in prose under the table (tests/e2e/test_hostile.py checks the same).
  auto expected = all_labels();
  expected.erase("infrastructure");
  EXPECT_EQ(std::set<std::string>(rows.begin(), rows.end()), expected);
  const auto section = document.substr(document.find(heading), 4000);
  EXPECT_THAT(section, HasSubstr("`infrastructure`"));
  EXPECT_THAT(section, HasSubstr(student_text(Verdict::InfrastructureError, "").substr(0, 40)));
}

TEST(VerdictDocs, TheVerdictTableQuotesTheDefaultTextWithTheDefaultLimits) {
  const std::string document = source_file("docs/reliability.md");
  const config::Limits defaults;
  for (const auto& info : kVerdicts) {
    // graded: the grader's result; the file verdicts: worded per cap or problem by grading; infrastructure:
    // prose.
    if (info.verdict == Verdict::Graded || info.limit == "files" ||
        info.verdict == Verdict::FileUnavailable || info.verdict == Verdict::InfrastructureError) {
      continue;
    }
    const auto cells = row_of(document, "## Every run ends in a verdict", std::string(info.label));
    ASSERT_EQ(cells.size(), 3u) << info.label;
    EXPECT_EQ(cells[2], student_text(info.verdict, config::quote_limit(defaults, info.limit), "exit code N"))
        << info.label;
  }
}

TEST(VerdictDocs, TheMessagesTableListsTheOverridableVerdictsAndWhatTheyQuote) {
  const std::string document = source_file("docs/operators.md");
  const std::string heading = "### `messages`: what students read";
  const auto rows = first_column(document, heading);
  EXPECT_EQ(std::vector<std::string>(rows.begin(), rows.end()),
            std::vector<std::string>(kOverridableLabels.begin(), kOverridableLabels.end()));
  for (const auto label : kOverridableLabels) {
    const auto* info = find(*from_label(label));
    const auto cells = row_of(document, heading, std::string(label));
    ASSERT_EQ(cells.size(), 2u) << label;
    if (info->limit.empty()) {
      EXPECT_EQ(cells[1], "nothing (empty)") << label;
    } else if (info->limit == "files") {
      EXPECT_THAT(cells[1], HasSubstr("`files` cap")) << label;
    } else {
      EXPECT_THAT(cells[1], HasSubstr("`limits." + std::string(info->limit) + "`")) << label;
      EXPECT_THAT(cells[1], HasSubstr(config::quote_limit(config::Limits{}, info->limit))) << label;
    }
  }
}

TEST(LimitDocs, TheLimitsTableListsTheTableWithItsDefaults) {
  const std::string document = source_file("docs/operators.md");
  const std::string heading = "### `limits`: every grading container";
  const auto rows = first_column(document, heading);
  std::vector<std::string> keys;
  for (const auto& field : config::limit_fields()) keys.emplace_back(field.key);
  EXPECT_EQ(rows, keys);
  const config::Limits defaults;
  for (const auto& field : config::limit_fields()) {
    const auto cells = row_of(document, heading, std::string(field.key));
    ASSERT_GE(cells.size(), 2u) << field.key;
    const std::string shown = config::show_limit(defaults, field);
    if (shown.empty()) {
      EXPECT_THAT(cells[1], HasSubstr("empty")) << field.key;
      continue;
    }
    // The documented default, as written in YAML, reads back as the built-in one.
    ASSERT_TRUE(cells[1].size() > 2 && cells[1].front() == '`' && cells[1].back() == '`') << cells[1];
    const std::string written = cells[1].substr(1, cells[1].size() - 2);
    switch (field.kind) {
      case config::LimitKind::Size:
        EXPECT_EQ(config::parse_bytes(written), config::parse_bytes(shown)) << field.key;
        break;
      case config::LimitKind::Count:
        EXPECT_EQ(written, shown) << field.key;
        break;
      case config::LimitKind::Cpus:
        EXPECT_EQ(config::parse_cpus(written), config::parse_cpus(shown)) << field.key;
        break;
      case config::LimitKind::Duration:
        EXPECT_EQ(config::parse_duration(written), config::parse_duration(shown)) << field.key;
        break;
      case config::LimitKind::Flag:
      case config::LimitKind::Text:
        EXPECT_EQ(written, shown) << field.key;
        break;
    }
  }
}

// ---- the limits table and check-config ----

TEST(LimitTable, KeysAreUniqueAndEveryNumericLimitHasABound) {
  EXPECT_EQ(limit_keys().size(), config::limit_fields().size());
  for (const auto& field : config::limit_fields()) {
    EXPECT_EQ(config::limit_field(field.key), &field);
    const bool numeric = field.kind != config::LimitKind::Flag && field.kind != config::LimitKind::Text;
    EXPECT_EQ(numeric, !std::holds_alternative<std::monostate>(field.bound)) << field.key;
    if (numeric) {
      EXPECT_EQ(field.bound_key, field.key);
    }
    EXPECT_EQ(numeric, field.check == nullptr) << field.key;
  }
  EXPECT_EQ(config::limit_field("memroy"), nullptr);
}

TEST(LimitTable, CheckConfigListsEachQueuesLimits) {
  config::testing::TempRoot root;
  root.mkdir("course");
  root.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
  root.write("conf.d/q.yaml",
             "queues:\n  q:\n    grader_root: ../course\n    limits: {memory: 512Mi, timeout: 90s, runtime: "
             "runc}\n");
  std::ostringstream out;
  config::LoadOptions options;
  options.env = config::testing::env_of({});
  options.env_names = config::testing::env_names_of({});
  options.runtimes = [](const std::string&) {
    return config::EngineRuntimes(std::vector<std::string>{"runc"});
  };
  ASSERT_EQ(config::check_config(root.path(), out, options), 0) << out.str();
  EXPECT_THAT(out.str(),
              HasSubstr("  q: memory 512 MiB, cpus 1, pids 128, timeout 1m30s, stdout 1 MiB, stderr 256 KiB, "
                        "tmpfs 64 MiB, nofile 256, fsize 64 MiB, submission 1 MiB, network false, "
                        "runtime runc\n"));
}

}  // namespace
}  // namespace xqw::verdicts
