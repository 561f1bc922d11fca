#include <gtest/gtest.h>

#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

std::string frame(int stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  const auto size = static_cast<std::uint32_t>(payload.size());
  out[4] = static_cast<char>((size >> 24) & 0xFF);
  out[5] = static_cast<char>((size >> 16) & 0xFF);
  out[6] = static_cast<char>((size >> 8) & 0xFF);
  out[7] = static_cast<char>(size & 0xFF);
  return out + std::string(payload);
}

TEST(StreamDemuxer, SeparatesStdoutAndStderr) {
  StreamDemuxer demuxer({.stdout_bytes = 100, .stderr_bytes = 100});
  EXPECT_TRUE(demuxer.feed(frame(1, "hello ") + frame(2, "oops") + frame(1, "world")));
  EXPECT_EQ(demuxer.output().out.data, "hello world");
  EXPECT_EQ(demuxer.output().err.data, "oops");
  EXPECT_FALSE(demuxer.output().cap_hit());
}

TEST(StreamDemuxer, ReassemblesFramesSplitAcrossReadsAtEveryByte) {
  const std::string stream = frame(1, "abc") + frame(2, "de") + frame(1, std::string(300, 'x'));
  for (std::size_t step = 1; step <= 9; ++step) {
    StreamDemuxer demuxer({.stdout_bytes = 1000, .stderr_bytes = 1000});
    for (std::size_t at = 0; at < stream.size(); at += step)
      demuxer.feed(std::string_view(stream).substr(at, step));
    EXPECT_EQ(demuxer.output().out.data, "abc" + std::string(300, 'x')) << "step " << step;
    EXPECT_EQ(demuxer.output().err.data, "de") << "step " << step;
  }
}

TEST(StreamDemuxer, EmptyFramesAreSkipped) {
  StreamDemuxer demuxer({.stdout_bytes = 10, .stderr_bytes = 10});
  demuxer.feed(frame(1, "") + frame(2, "") + frame(1, "a"));
  EXPECT_EQ(demuxer.output().out.data, "a");
  EXPECT_EQ(demuxer.output().err.data, "");
}

TEST(StreamDemuxer, CapHitMidFrameKeepsExactlyTheCapAndReportsTruncation) {
  StreamDemuxer demuxer({.stdout_bytes = 5, .stderr_bytes = 3});
  EXPECT_TRUE(demuxer.feed(frame(1, "abc")));
  EXPECT_FALSE(demuxer.feed(frame(1, "defgh")));
  EXPECT_EQ(demuxer.output().out.data, "abcde");
  EXPECT_TRUE(demuxer.output().out.truncated);
  EXPECT_EQ(demuxer.output().out.total_bytes, 8u);
  EXPECT_FALSE(demuxer.output().err.truncated);
}

TEST(StreamDemuxer, ExactlyTheCapIsNotTruncation) {
  StreamDemuxer demuxer({.stdout_bytes = 4, .stderr_bytes = 4});
  EXPECT_TRUE(demuxer.feed(frame(2, "abcd")));
  EXPECT_FALSE(demuxer.output().err.truncated);
  EXPECT_FALSE(demuxer.feed(frame(2, "e")));
  EXPECT_TRUE(demuxer.output().err.truncated);
  EXPECT_EQ(demuxer.output().err.data, "abcd");
}

TEST(CreateBody, AppliesEveryLimitAndLockdown) {
  ContainerSpec spec;
  spec.image = "grader:1";
  spec.cmd = {"python3", "-c", "print(1)"};
  spec.entrypoint = std::vector<std::string>{};
  spec.env = {"A=1"};
  spec.working_dir = "/work";
  spec.user = "65534:65534";
  spec.labels = {{"org.openedx.xqueue-watcher.queue", "q1"}};
  spec.mounts = {{.source = "/srv/course/p1", .target = "/grader", .read_only = true}};
  spec.tmpfs = {{"/tmp", 64 << 20}};
  spec.memory_bytes = 256 << 20;
  spec.nano_cpus = 500'000'000;
  spec.pids_limit = 64;
  spec.cap_add = {"SETUID", "SETGID"};
  spec.ulimits = {{"nofile", 256, 256}, {"fsize", 1 << 20, 1 << 20}};
  spec.runtime = "runsc";
  spec.log_max_bytes = 2 << 20;
  const auto body = create_body(spec);
  const auto& host = body["HostConfig"];

  EXPECT_EQ(body["Image"], "grader:1");
  EXPECT_EQ(body["Cmd"], nlohmann::json({"python3", "-c", "print(1)"}));
  EXPECT_EQ(body["Entrypoint"], nlohmann::json::array());
  EXPECT_EQ(body["User"], "65534:65534");
  EXPECT_EQ(body["WorkingDir"], "/work");
  EXPECT_EQ(body["Labels"]["org.openedx.xqueue-watcher.queue"], "q1");
  EXPECT_EQ(body["Tty"], false);
  EXPECT_EQ(body["NetworkDisabled"], true);
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["ReadonlyRootfs"], true);
  EXPECT_EQ(host["Memory"], 256 << 20);
  EXPECT_EQ(host["MemorySwap"], 256 << 20);
  EXPECT_EQ(host["NanoCpus"], 500'000'000);
  EXPECT_EQ(host["PidsLimit"], 64);
  EXPECT_EQ(host["CapDrop"], nlohmann::json({"ALL"}));
  EXPECT_EQ(host["CapAdd"], nlohmann::json({"SETUID", "SETGID"}));
  EXPECT_EQ(host["SecurityOpt"], nlohmann::json({"no-new-privileges"}));
  EXPECT_EQ(host["Runtime"], "runsc");
  EXPECT_EQ(host["Tmpfs"]["/tmp"], "rw,nosuid,nodev,noexec,size=67108864,mode=1777");
  EXPECT_EQ(host["Mounts"][0]["Source"], "/srv/course/p1");
  EXPECT_EQ(host["Mounts"][0]["Target"], "/grader");
  EXPECT_EQ(host["Mounts"][0]["ReadOnly"], true);
  EXPECT_EQ(host["Mounts"][0]["Type"], "bind");
  EXPECT_EQ(host["Ulimits"][0], nlohmann::json({{"Name", "nofile"}, {"Soft", 256}, {"Hard", 256}}));
  EXPECT_EQ(host["Ulimits"][1]["Name"], "fsize");
  EXPECT_EQ(host["LogConfig"]["Type"], "json-file");
  EXPECT_EQ(host["LogConfig"]["Config"]["max-size"], std::to_string(2 << 20));
  EXPECT_EQ(host["LogConfig"]["Config"]["max-file"], "1");
}

TEST(CreateBody, DefaultsAreStrictAndOmitUnsetOverrides) {
  ContainerSpec spec;
  spec.image = "img";
  const auto body = create_body(spec);
  EXPECT_FALSE(body.contains("Cmd"));
  EXPECT_FALSE(body.contains("Entrypoint"));
  EXPECT_FALSE(body.contains("User"));
  EXPECT_FALSE(body["HostConfig"].contains("Runtime"));
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "none");
  EXPECT_EQ(body["HostConfig"]["CapDrop"], nlohmann::json({"ALL"}));
  EXPECT_EQ(body["HostConfig"]["CapAdd"], nlohmann::json::array());
  EXPECT_EQ(body["HostConfig"]["SecurityOpt"], nlohmann::json({"no-new-privileges"}));
  EXPECT_EQ(body["HostConfig"]["ReadonlyRootfs"], true);
}

TEST(PullPolicy, ParsesTheThreePoliciesAndRejectsOthers) {
  EXPECT_EQ(parse_pull_policy("never"), PullPolicy::Never);
  EXPECT_EQ(parse_pull_policy("if-not-present"), PullPolicy::IfNotPresent);
  EXPECT_EQ(parse_pull_policy("always"), PullPolicy::Always);
  EXPECT_FALSE(parse_pull_policy("sometimes").has_value());
  EXPECT_EQ(to_string(PullPolicy::IfNotPresent), "if-not-present");
}

TEST(PullPolicy, ParsesExactlyTheNamesToStringGives) {
  for (const auto policy : {PullPolicy::Never, PullPolicy::IfNotPresent, PullPolicy::Always}) {
    EXPECT_EQ(parse_pull_policy(to_string(policy)), policy);
  }
  // Kubernetes' spelling is read by the upstream conf.d reader, not here.
  EXPECT_FALSE(parse_pull_policy("IfNotPresent").has_value());
  EXPECT_FALSE(parse_pull_policy("Always").has_value());
  EXPECT_FALSE(parse_pull_policy("").has_value());
}

TEST(DockerHost, AUnixUrlNamesTheSocketAndEmptyMeansTheDefault) {
  EXPECT_EQ(socket_from_docker_host("unix:///run/user/1000/docker.sock"), "/run/user/1000/docker.sock");
  EXPECT_EQ(socket_from_docker_host(""), std::string(kDefaultSocket));
}

TEST(DockerHost, OtherFormsAreRefusedNamingTheValueAndWhy) {
  const auto tcp = socket_from_docker_host("tcp://10.0.0.1:2375");
  ASSERT_FALSE(tcp.has_value());
  EXPECT_EQ(tcp.error().value, "tcp://10.0.0.1:2375");
  EXPECT_EQ(tcp.error().to_string(),
            "DOCKER_HOST 'tcp://10.0.0.1:2375' is not supported: the engine is reached through a unix socket "
            "only, not tcp://");
  for (const std::string_view host : {"ssh://me@engine", "fd://", "npipe:////./pipe/docker_engine"}) {
    const auto refused = socket_from_docker_host(host);
    ASSERT_FALSE(refused.has_value()) << host;
    EXPECT_NE(refused.error().reason.find("unix socket only"), std::string::npos)
        << refused.error().to_string();
  }
  for (const std::string_view host : {"unix://", "unix://run/docker.sock"}) {
    const auto refused = socket_from_docker_host(host);
    ASSERT_FALSE(refused.has_value()) << host;
    EXPECT_NE(refused.error().reason.find("absolute path"), std::string::npos) << refused.error().to_string();
  }
  const auto bare = socket_from_docker_host("/var/run/docker.sock");
  ASSERT_FALSE(bare.has_value());
  EXPECT_NE(bare.error().reason.find("unix:///PATH"), std::string::npos) << bare.error().to_string();
}

TEST(ParseVersion, ReadsVersionAndInfo) {
  const auto info =
      parse_version(R"({"Version":"28.2.2","ApiVersion":"1.50","Os":"linux"})",
                    R"({"NCPU":2,"Runtimes":{"runc":{"path":"runc"},"runsc":{"path":"/usr/bin/runsc"}}})");
  EXPECT_EQ(info.version, "28.2.2");
  EXPECT_EQ(info.api_version, "1.50");
  EXPECT_EQ(info.os, "linux");
  EXPECT_EQ(info.cpus, 2);
  EXPECT_EQ(info.runtimes.size(), 2u);
  EXPECT_EQ(info.runtimes.count("runsc"), 1u);
}

// Issue 12's defect: an odd /version reply threw a JSON type error (no EngineError) and ended the worker.
TEST(ParseVersion, OddRepliesAreEngineErrorsOrEmptyFieldsNeverJsonErrors) {
  for (const char* body : {"[1,2]", "not json", "\"text\"", ""}) {
    EXPECT_THROW(parse_version(body, std::nullopt), EngineError) << body;
  }
  const auto info = parse_version(R"({"Version":28,"ApiVersion":null})", std::string_view("[]"));
  EXPECT_EQ(info.version, "");
  EXPECT_EQ(info.api_version, "");
  EXPECT_EQ(info.cpus, 0);
  EXPECT_TRUE(info.runtimes.empty());
  EXPECT_EQ(parse_version("{}", std::string_view(R"({"NCPU":"two","Runtimes":[]})")).cpus, 0);
}

}  // namespace
}  // namespace xqw::docker
