// The container a job gets (pure): limits, mounts at the image's paths, users, labels, path mapping.
#include <gtest/gtest.h>

#include <algorithm>

#include "grading/container_grader.hpp"

namespace xqw::grading {
namespace {

QueueGrading demo_queue() {
  QueueGrading queue;
  queue.queue = "demo";
  queue.watcher_id = "w1";
  queue.image = "grader:1";
  queue.grader_root = "/srv/courses/demo";
  queue.work_dir = "/var/lib/xqueue-watcher/jobs";
  queue.limits.memory_bytes = 128 << 20;
  queue.limits.cpus = 0.5;
  queue.limits.pids = 32;
  queue.limits.tmpfs_bytes = 8 << 20;
  queue.limits.nofile = 64;
  queue.limits.fsize_bytes = 1 << 20;
  queue.limits.stdout_bytes = 1 << 20;
  queue.limits.stderr_bytes = 1 << 18;
  return queue;
}

TEST(ContainerSpec, AppliesTheQueueLimitsAndLabels) {
  const auto spec = container_spec(demo_queue(), ImageContract{}, "/srv/courses/demo/ex1",
                                   "/var/lib/xqueue-watcher/jobs/job-7", "7");
  EXPECT_EQ(spec.image, "grader:1");
  EXPECT_EQ(spec.memory_bytes, 128 << 20);
  EXPECT_EQ(spec.nano_cpus, 500'000'000);
  EXPECT_EQ(spec.pids_limit, 32);
  EXPECT_EQ(spec.tmpfs.at("/tmp"), 8 << 20);
  EXPECT_FALSE(spec.network);
  EXPECT_TRUE(spec.read_only_rootfs);
  EXPECT_TRUE(spec.no_new_privileges);
  ASSERT_EQ(spec.ulimits.size(), 2u);
  EXPECT_EQ(spec.ulimits[0].name, "nofile");
  EXPECT_EQ(spec.ulimits[0].hard, 64);
  EXPECT_EQ(spec.ulimits[1].name, "fsize");
  EXPECT_EQ(spec.labels.at(std::string(kWatcherLabel)), "w1");
  EXPECT_EQ(spec.labels.at(std::string(kQueueLabel)), "demo");
  EXPECT_EQ(spec.labels.at(std::string(kSubmissionLabel)), "7");
  EXPECT_EQ(spec.labels.at(std::string(kManagedLabel)), "true");
  EXPECT_GE(spec.log_max_bytes, (1 << 20) + (1 << 18));
}

TEST(ContainerSpec, CarriesTheRunLabelOnlyWhenTheQueueHasARun) {
  auto queue = demo_queue();
  const auto without = container_spec(queue, ImageContract{}, "/srv/courses/demo/ex1", "/jobs/j", "1");
  EXPECT_FALSE(without.labels.contains(std::string(kRunLabel)));
  queue.run_id = "r2";
  const auto with = container_spec(queue, ImageContract{}, "/srv/courses/demo/ex1", "/jobs/j", "1");
  EXPECT_EQ(with.labels.at(std::string(kRunLabel)), "r2");
}

TEST(EarlierRunContainers, AreThoseWithAnotherRunOrNone) {
  const std::vector<docker::ContainerSummary> listed = {
      {.id = "ours", .state = "running", .labels = {{std::string(kRunLabel), "r2"}}},
      {.id = "killed-run", .state = "created", .labels = {{std::string(kRunLabel), "r1"}}},
      {.id = "before-run-labels", .state = "exited", .labels = {}},
  };
  EXPECT_EQ(earlier_run_containers(listed, "r2"),
            (std::vector<std::string>{"killed-run", "before-run-labels"}));
  EXPECT_TRUE(earlier_run_containers({listed[0]}, "r2").empty());
}

TEST(ContainerSpec, PlainImagesRunAsNobodyWithNoCapabilities) {
  const auto spec = container_spec(demo_queue(), ImageContract{}, "/srv/courses/demo/ex1", "/jobs/j", "1");
  EXPECT_EQ(spec.user, "65534:65534");
  EXPECT_TRUE(spec.cap_add.empty());
  ASSERT_EQ(spec.mounts.size(), 2u);
  EXPECT_EQ(spec.mounts[0].target, "/grader");
  EXPECT_EQ(spec.mounts[1].target, "/job");
  EXPECT_TRUE(spec.mounts[0].read_only);
  EXPECT_TRUE(spec.mounts[1].read_only);
}

TEST(ContainerSpec, SupervisedImagesGetRootWithOnlySetuidAndSetgidAndTheirMountPoints) {
  const ImageContract contract{
      .grader_dir = "/xqw/private/grader", .job_dir = "/xqw/private/job", .setuid_supervisor = true};
  const auto spec = container_spec(demo_queue(), contract, "/srv/courses/demo/ex1", "/jobs/j", "1");
  EXPECT_EQ(spec.user, "0:0");
  EXPECT_EQ(spec.cap_add, (std::vector<std::string>{"SETUID", "SETGID"}));
  EXPECT_EQ(spec.mounts[0].target, "/xqw/private/grader");
  EXPECT_EQ(spec.mounts[1].target, "/xqw/private/job");
}

TEST(ContainerSpec, QueueUserAndRuntimeWin) {
  auto queue = demo_queue();
  queue.limits.user = "1000:1000";
  queue.limits.runtime = "runsc";
  queue.limits.network = true;
  const ImageContract contract{.setuid_supervisor = true};
  const auto spec = container_spec(queue, contract, "/srv/courses/demo/ex1", "/jobs/j", "1");
  EXPECT_EQ(spec.user, "1000:1000");
  EXPECT_TRUE(spec.cap_add.empty());
  EXPECT_EQ(spec.runtime, "runsc");
  EXPECT_TRUE(spec.network);
}

TEST(ContainerSpec, SandboxedKernelsAlsoGetThePidsLimitAsNproc) {
  auto queue = demo_queue();
  queue.limits.pids = 64;
  const auto plain = container_spec(queue, ImageContract{}, "/srv/courses/demo/ex1", "/jobs/j", "1");
  for (const auto& limit : plain.ulimits) EXPECT_NE(limit.name, "nproc") << "nproc is host-wide under runc";
  queue.limits.runtime = "runsc";
  const auto gvisor = container_spec(queue, ImageContract{}, "/srv/courses/demo/ex1", "/jobs/j", "1");
  const auto nproc = std::find_if(gvisor.ulimits.begin(), gvisor.ulimits.end(),
                                  [](const docker::Ulimit& limit) { return limit.name == "nproc"; });
  ASSERT_NE(nproc, gvisor.ulimits.end());
  EXPECT_EQ(nproc->soft, 64);
  EXPECT_EQ(nproc->hard, 64);
  EXPECT_EQ(gvisor.pids_limit, 64);
  EXPECT_TRUE(runtime_has_own_kernel("kata-qemu"));
  EXPECT_FALSE(runtime_has_own_kernel("runc"));
  EXPECT_FALSE(runtime_has_own_kernel(""));
}

TEST(ContainerSpec, MountSourcesAreMappedToTheEnginesHostPaths) {
  auto queue = demo_queue();
  queue.docker_host_grader_root = "/mnt/host/courses/demo";
  queue.docker_host_work_dir = "/mnt/host/jobs";
  const auto spec = container_spec(queue, ImageContract{}, "/srv/courses/demo/ex1",
                                   "/var/lib/xqueue-watcher/jobs/job-7", "7");
  EXPECT_EQ(spec.mounts[0].source, "/mnt/host/courses/demo/ex1");
  EXPECT_EQ(spec.mounts[1].source, "/mnt/host/jobs/job-7");
}

TEST(ImageContractTest, ReadsTheImagesLabels) {
  docker::ImageInfo image;
  EXPECT_EQ(image_contract(image).grader_dir, "/grader");
  EXPECT_FALSE(image_contract(image).setuid_supervisor);
  image.labels = {{std::string(kGraderDirLabel), "/g"},
                  {std::string(kJobDirLabel), "/j"},
                  {std::string(kSupervisorLabel), "setuid"}};
  const auto contract = image_contract(image);
  EXPECT_EQ(contract.grader_dir, "/g");
  EXPECT_EQ(contract.job_dir, "/j");
  EXPECT_TRUE(contract.setuid_supervisor);
}

}  // namespace
}  // namespace xqw::grading
