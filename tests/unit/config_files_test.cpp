// The `files:` block (uploaded files): defaults, a queue's own, the operator's bounds.files, and every
// error naming its file, key and reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
  }
  LoadResult load_queue(const std::string& queue_body) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n" + queue_body);
    return load(root_.path());
  }
  Problem error_at(const LoadResult& result, const std::string& key) {
    const auto* problem = with_key(result.errors, key);
    EXPECT_NE(problem, nullptr) << "no error at " << key << "\n" << all_problems(result);
    return problem ? *problem : Problem{};
  }
  TempRoot root_;
};

TEST_F(ConfigFiles, BuiltInDefaults) {
  const auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& files = result.config->queues.at(0).files;
  EXPECT_EQ(files, FilesConfig{});
  EXPECT_EQ(files.max_count, 10);
  EXPECT_EQ(files.max_size_bytes, 1 * MiB);
  EXPECT_EQ(files.max_total_bytes, 4 * MiB);
  EXPECT_EQ(files.timeout, milliseconds(10000));
  EXPECT_EQ(files.base_url, "") << "the queue's XQueue server URL";
  EXPECT_TRUE(files.allowed_hosts.empty());
}

TEST_F(ConfigFiles, EveryKeyOfAQueue) {
  const auto result = load_queue(
      "    files:\n"
      "      max_count: 3\n"
      "      max_size: 256Ki\n"
      "      max_total: '1Mi'\n"
      "      timeout: 5s\n"
      "      base_url: https://lms.example.org/\n"
      "      allowed_hosts: [Storage.Example.NET, 'files.example.com:8443', '*.s3.amazonaws.com', "
      "'[::1]:9000']\n");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& files = result.config->queues.at(0).files;
  EXPECT_EQ(files.max_count, 3);
  EXPECT_EQ(files.max_size_bytes, 256 * KiB);
  EXPECT_EQ(files.max_total_bytes, 1 * MiB);
  EXPECT_EQ(files.timeout, milliseconds(5000));
  EXPECT_EQ(files.base_url, "https://lms.example.org");
  EXPECT_EQ(files.allowed_hosts, (std::vector<std::string>{"storage.example.net", "files.example.com:8443",
                                                           "*.s3.amazonaws.com", "[::1]:9000"}));
}

TEST_F(ConfigFiles, DefaultsApplyToEveryQueueAndAQueueReplacesFieldByField) {
  root_.write("xqwatcher.yaml", "defaults:\n  files: {max_count: 2, allowed_hosts: [cdn.example.org]}\n");
  auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).files.max_count, 2);
  EXPECT_EQ(result.config->queues.at(0).files.allowed_hosts, std::vector<std::string>{"cdn.example.org"});
  EXPECT_EQ(result.config->queues.at(0).files.max_size_bytes, 1 * MiB);

  result = load_queue("    files: {max_size: 2Ki}\n");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).files.max_count, 2) << "kept from the defaults";
  EXPECT_EQ(result.config->queues.at(0).files.max_size_bytes, 2 * KiB);

  // Upstream JSON queues get the defaults too: nothing new to write there.
  root_.write("conf.d/q.yaml", "");
  root_.write("conf.d/up.json", R"({"up": {"SERVER_REF": "default", "CONNECTIONS": 1,
      "HANDLERS": [{"HANDLER": "xqueue_watcher.containergrader.ContainerGrader",
                    "KWARGS": {"grader_root": "../course"}}]}})");
  result = load(root_.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).files.max_count, 2);
}

TEST_F(ConfigFiles, BoundsHoldQueuesAndDefaults) {
  root_.write("xqwatcher.yaml",
              "bounds:\n  files: {max_count: 10, max_size: 2Mi, max_total: 8Mi, timeout: 20s}\n"
              "defaults:\n  files: {max_total: 16Mi}\n");
  const auto result = load_queue("    files: {max_count: 11, max_size: 3Mi, max_total: 4Mi, timeout: 30s}\n");
  EXPECT_THAT(error_at(result, "queues.q.files.max_count").reason,
              HasSubstr("11 is above the operator's bound of 10 (bounds.files.max_count in xqwatcher.yaml)"));
  EXPECT_THAT(error_at(result, "queues.q.files.max_size").reason,
              HasSubstr("3 MiB is above the operator's bound of 2 MiB"));
  EXPECT_THAT(error_at(result, "queues.q.files.timeout").reason,
              HasSubstr("30s is above the operator's bound of 20s"));
  EXPECT_EQ(with_key(result.errors, "queues.q.files.max_total"), nullptr) << "4Mi is within 8Mi";
  const auto defaults = error_at(result, "defaults.files.max_total");
  EXPECT_THAT(defaults.reason, HasSubstr("16 MiB is above the operator's bound of 8 MiB"));
  EXPECT_EQ(defaults.file, (root_.path() / "xqwatcher.yaml").string());
  EXPECT_EQ(result.errors.size(), 4u) << all_problems(result);
}

TEST_F(ConfigFiles, BuiltInDefaultsAreHeldToTheBoundsToo) {
  root_.write("xqwatcher.yaml", "bounds:\n  files: {max_count: 4}\n");
  const auto result = load_queue("    files: {max_count: 4}\n");
  EXPECT_THAT(error_at(result, "defaults.files.max_count").reason,
              HasSubstr("10 is above the operator's bound of 4"));
  EXPECT_EQ(with_key(result.errors, "queues.q.files.max_count"), nullptr);
}

TEST_F(ConfigFiles, ErrorsNameFileKeyAndReason) {
  const auto result = load_queue(
      "    files:\n"
      "      max_count: -1\n"
      "      max_size: 0\n"
      "      max_total: 12 apples\n"
      "      timeout: 2m\n"
      "      base_url: ftp://files.example.org\n"
      "      allowed_hosts: [https://cdn.example.org/x, 'a:b', '*', 'foo.*.org', '', "
      "'ok.example.org:99999']\n"
      "      max_cont: 1\n");
  EXPECT_THAT(error_at(result, "queues.q.files.max_count").reason, HasSubstr("must be at least 0, got -1"));
  EXPECT_THAT(error_at(result, "queues.q.files.max_size").reason,
              HasSubstr("must be at least 1 byte, got '0'"));
  EXPECT_THAT(error_at(result, "queues.q.files.max_total").reason, HasSubstr("unknown unit 'apples'"));
  EXPECT_THAT(error_at(result, "queues.q.files.timeout").reason,
              HasSubstr("must be more than 0 and at most 1m"));
  EXPECT_THAT(error_at(result, "queues.q.files.base_url").reason,
              HasSubstr("is not an http:// or https:// URL"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[0]").reason,
              HasSubstr("write the host only (e.g. files.example.org or files.example.org:8443)"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[1]").reason,
              HasSubstr("has a port that is not a number from 1 to 65535"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[2]").reason,
              HasSubstr("a wildcard is allowed only"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[3]").reason,
              HasSubstr("a wildcard is allowed only"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[4]").reason, HasSubstr("the host is empty"));
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts[5]").reason,
              HasSubstr("not a number from 1 to 65535"));
  EXPECT_THAT(error_at(result, "queues.q.files.max_cont").reason, HasSubstr("did you mean 'max_count'?"));
  const auto problem = error_at(result, "queues.q.files.max_count");
  EXPECT_EQ(problem.file, (root_.path() / "conf.d" / "q.yaml").string());
  EXPECT_GT(problem.line, 0);
}

TEST_F(ConfigFiles, WrongShapes) {
  auto result = load_queue("    files: 3\n");
  EXPECT_THAT(error_at(result, "queues.q.files").reason, HasSubstr("expected a map"));
  result = load_queue("    files: {allowed_hosts: cdn.example.org}\n");
  EXPECT_THAT(error_at(result, "queues.q.files.allowed_hosts").reason, HasSubstr("expected a list"));
  root_.write("xqwatcher.yaml", "bounds: {files: {base_url: 'http://x'}}\n");
  result = load_queue("");
  EXPECT_THAT(error_at(result, "bounds.files.base_url").reason, HasSubstr("unknown key"));
}

TEST_F(ConfigFiles, FileVerdictMessagesMayBeSet) {
  const auto result =
      load_queue("    messages: {files_too_large: 'At most {limit}.', file_unavailable: 'Upload again.'}\n");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).messages.at("files_too_large"), "At most {limit}.");
  EXPECT_EQ(result.config->queues.at(0).messages.at("file_unavailable"), "Upload again.");
}

}  // namespace
}  // namespace xqw::config::testing
