// ContainerGrader against the real engine and the Python grader image: containers prepared ahead
// (started and waiting, or only created), their replacement before they stop waiting, and cleanup.
#include "grading/container_grader.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine_support.hpp"

namespace xqw::grading {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kGraderImage = "xqueue-watcher/python-grader:latest";
const fs::path kCourse = fs::path(XQW_SOURCE_DIR) / "examples" / "demo-course";

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class PreparedContainersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "xqw-prepared-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    work_dir_ = pattern;
    const auto image = engine_.inspect_image(kGraderImage);
    ASSERT_TRUE(image) << kGraderImage << " is missing: scripts/images builds it";
    contract_ = image_contract(*image);
    ASSERT_EQ(contract_.job_signal, "SIGWINCH") << "the Python image declares its job signal";
  }
  void TearDown() override {
    engine_.remove_by_label(orphan_filter(watcher_id_));
    fs::remove_all(work_dir_);
  }

  QueueGrading queue(config::Precreate precreate, std::chrono::seconds wait_for_job = kWaitForJob) const {
    QueueGrading queue{.queue = "prepared",
                       .watcher_id = watcher_id_,
                       .image = kGraderImage,
                       .grader_root = kCourse,
                       .work_dir = work_dir_,
                       .precreate = precreate,
                       .wait_for_job = wait_for_job};
    queue.limits.timeout = 20s;
    return queue;
  }

  static GradeJob right_answer(std::string submission_id) {
    return GradeJob{.queue = "prepared",
                    .submission_id = std::move(submission_id),
                    .grader = "01-average/grader.py",
                    .grader_payload = {{"grader", "01-average/grader.py"}},
                    .student_response = read_file(kCourse / "01-average" / "submissions" / "right.py")};
  }

  std::vector<docker::ContainerSummary> containers() {
    return engine_.list_by_label(orphan_filter(watcher_id_));
  }

  // The one container prepared ahead once it is in `state`, waiting up to `within`.
  std::optional<docker::ContainerSummary> prepared_in(const std::string& state,
                                                      std::chrono::seconds within = 30s) {
    const auto end = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < end) {
      const auto listed = containers();
      if (listed.size() == 1 && listed[0].state == state) return listed[0];
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  // The waiting container's FIFO (kJobReadyFifo) once a process holds it open (the image's supervisor
  // opens it a moment after the container starts), waiting up to `within`; nullopt otherwise.
  std::optional<fs::path> fifo_with_reader(std::chrono::seconds within = 30s) {
    const auto end = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < end) {
      for (const auto& job_dir : fs::directory_iterator(work_dir_)) {
        const auto fifo = job_dir.path() / kJobReadyFifo;
        if (fs::is_fifo(fifo) && held_open(fifo)) return fifo;
      }
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  // True when some process on this host has `path` open (by device and inode, through /proc/*/fd).
  static bool held_open(const fs::path& path) {
    struct stat wanted {};
    if (::stat(path.c_str(), &wanted) != 0) return false;
    std::error_code ignored;
    for (const auto& process : fs::directory_iterator("/proc", ignored)) {
      for (const auto& fd : fs::directory_iterator(process.path() / "fd", ignored)) {
        struct stat held {};
        if (::stat(fd.path().c_str(), &held) == 0 && held.st_dev == wanted.st_dev &&
            held.st_ino == wanted.st_ino) {
          return true;
        }
      }
    }
    return false;
  }

  docker::Client engine_{testing::engine_socket()};
  std::string watcher_id_ = "it-prepared-" + testing::unique_suffix();
  fs::path work_dir_;
  ImageContract contract_;
};

TEST_F(PreparedContainersTest, AStartedContainerWaitsForItsJobAndGradesIt) {
  ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_);
  EXPECT_EQ(grader.precreate_mode(), config::Precreate::Started);
  const auto waiting = prepared_in("running");
  ASSERT_TRUE(waiting) << "one started container waiting for its job";
  EXPECT_EQ(waiting->labels.at(std::string(kSubmissionLabel)), "waiting");
  ASSERT_TRUE(fifo_with_reader()) << "the image's supervisor opens the job directory's FIFO";

  const auto report = grader.grade(right_answer("41"));
  EXPECT_EQ(report.outcome.verdict, Verdict::Graded) << report.staff_stderr;
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.html;
  EXPECT_EQ(report.container_id, waiting->id) << "the waiting container graded the submission";
  EXPECT_EQ(report.times.create.count(), 0) << "nothing was created on the critical path";
  EXPECT_EQ(report.delivery, JobDelivery::Fifo)
      << "under runc the job reaches the container without an engine call";
}

TEST_F(PreparedContainersTest, OnceTheFifoWorkedAContainerTakenBeforeItsSupervisorListensNeedsNoSignal) {
  ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_);
  ASSERT_TRUE(fifo_with_reader()) << "the first container's supervisor listens";
  ASSERT_EQ(grader.grade(right_answer("41")).delivery, JobDelivery::Fifo);
  // The next container was started as this one was taken; taken at once, its supervisor is usually
  // still starting: it finds job.json when it first looks, so neither the FIFO nor the signal (an
  // engine call and a run of runc) is needed, and the same container grades.
  const auto report = grader.grade(right_answer("43"));
  EXPECT_TRUE(report.delivery == JobDelivery::JobFile || report.delivery == JobDelivery::Fifo)
      << to_string(report.delivery);
  EXPECT_EQ(report.times.create.count(), 0) << "graded by the container prepared for it, none made now";
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.staff_stderr;
}

TEST_F(PreparedContainersTest, OnceTheFifoWorkedAContainerThatEndedWhileWaitingIsReplaced) {
  ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_);
  ASSERT_TRUE(fifo_with_reader());
  const auto first = grader.grade(right_answer("41"));
  ASSERT_EQ(first.delivery, JobDelivery::Fifo);
  // The next waiting container ends (killed, the engine restarted): it has no reader on its FIFO, like
  // one still starting, but it must not be handed the job.
  std::optional<std::string> next;
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (!next && std::chrono::steady_clock::now() < end) {
    for (const auto& listed : containers()) {
      if (listed.id != first.container_id && listed.state == "running") next = listed.id;
    }
    if (!next) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(next) << "the next container was prepared";
  engine_.kill(*next);
  engine_.wait(*next, std::chrono::steady_clock::now() + 30s);

  const auto report = grader.grade(right_answer("47"));
  EXPECT_NE(report.container_id, *next);
  EXPECT_GT(report.times.create.count(), 0) << "a new container, made on the critical path";
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.staff_stderr;
}

TEST_F(PreparedContainersTest, AContainerThatCannotBeWokenThroughItsFifoGetsTheSignal) {
  ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_);
  const auto waiting = prepared_in("running");
  ASSERT_TRUE(waiting);
  // As under gVisor or with an older image: nobody can be reached through the FIFO's path.
  const auto fifo = fifo_with_reader();
  ASSERT_TRUE(fifo) << "the waiting container's job directory has its FIFO";
  fs::remove(*fifo);

  const auto report = grader.grade(right_answer("45"));
  EXPECT_EQ(report.container_id, waiting->id);
  EXPECT_EQ(report.delivery, JobDelivery::Signal);
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.staff_stderr;
}

TEST_F(PreparedContainersTest, AWaitingContainerIsReplacedBeforeItStopsWaiting) {
  ContainerGrader grader(engine_, queue(config::Precreate::Started, 4s), contract_);
  const auto first = prepared_in("running");
  ASSERT_TRUE(first);
  // Replaced after 90 % of its 4 s wait: a new one runs and the old one is gone, never found ended.
  const auto end = std::chrono::steady_clock::now() + 30s;
  std::vector<docker::ContainerSummary> listed;
  while (std::chrono::steady_clock::now() < end) {
    listed = containers();
    if (listed.size() == 1 && listed[0].id != first->id && listed[0].state == "running") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_NE(listed[0].id, first->id) << "the waiting container was not replaced";
  const auto report = grader.grade(right_answer("42"));
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.staff_stderr;
  EXPECT_EQ(report.container_id, listed[0].id);
}

TEST_F(PreparedContainersTest, AnImageWithoutAJobSignalGetsCreatedContainers) {
  ImageContract without_signal = contract_;
  without_signal.job_signal.clear();
  ContainerGrader grader(engine_, queue(config::Precreate::Started), without_signal);
  EXPECT_EQ(grader.precreate_mode(), config::Precreate::Created);
  const auto created = prepared_in("created");
  ASSERT_TRUE(created) << "one created, never started container";
  EXPECT_EQ(created->labels.at(std::string(kSubmissionLabel)), "precreated");
  const auto report = grader.grade(right_answer("43"));
  EXPECT_EQ(report.outcome.result.score, 1.0) << report.staff_stderr;
  EXPECT_EQ(report.container_id, created->id);
}

// What the containers_ready gauge hears: one ready while idle, one again after a grading, none once gone.
TEST_F(PreparedContainersTest, ReadyContainersAreCountedInAndOut) {
  std::atomic<int> ready{0};
  std::atomic<int> lowest{0};
  const auto count = [&](int delta) {
    const int now = ready += delta;
    if (now < lowest) lowest = now;
  };
  const auto ready_is = [&](int wanted) {
    const auto end = std::chrono::steady_clock::now() + 30s;
    while (ready != wanted && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
    return ready == wanted;
  };
  {
    ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_, count);
    EXPECT_TRUE(ready_is(1)) << "one container prepared ahead: " << ready;
    EXPECT_EQ(grader.grade(right_answer("46")).outcome.result.score, 1.0);
    EXPECT_TRUE(ready_is(1)) << "the next one prepared after the grading: " << ready;
  }
  EXPECT_EQ(ready, 0) << "the one left was removed with the grader";
  EXPECT_EQ(lowest, 0) << "never fewer than none";
}

TEST_F(PreparedContainersTest, NothingIsLeftWhenTheGraderGoes) {
  {
    ContainerGrader grader(engine_, queue(config::Precreate::Started), contract_);
    ASSERT_TRUE(prepared_in("running"));
    EXPECT_EQ(grader.grade(right_answer("44")).outcome.result.score, 1.0);
  }
  EXPECT_TRUE(containers().empty()) << "containers left after the grader went";
  EXPECT_TRUE(fs::is_empty(work_dir_)) << "job directories left after the grader went";
}

}  // namespace
}  // namespace xqw::grading
