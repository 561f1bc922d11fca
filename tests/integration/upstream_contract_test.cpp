// The Python watcher's ContainerGrader contract against the real engine, with the test image written to
// it (images/upstream-compat, built by scripts/images): grading, the largest submission the environment
// carries, a crashing grader, what the container looks like from inside, and no volume left behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine_support.hpp"
#include "grading/container_grader.hpp"
#include "http/http.hpp"

namespace xqw::grading {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kCompatImage = "xqueue-watcher/test-upstream-compat:latest";
const fs::path kCourse = fs::path(XQW_SOURCE_DIR) / "tests" / "e2e" / "fixtures" / "upstream-course";

const std::string kRight = "def square(x):\n    return x * x\n";
const std::string kWrong = "def square(x):\n    return x + 1\n";

// The submission's probe() describes its container; the image shows it as the test's actual output.
const std::string kProbe = R"(import os, sys

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as error:
        return "refused:" + (os.strerror(error.errno) if error.errno else type(error).__name__)

def probe():
    facts = {}
    with open("/proc/self/mountinfo") as mounts:
        tmp = [line.split() for line in mounts if line.split()[4] == "/tmp"]
    facts["tmp_mounts"] = str(len(tmp))
    if tmp:
        fields = tmp[0][tmp[0].index("-") + 1:]
        facts["tmp_fs"] = fields[0]
        facts["tmp_size"] = [o for o in fields[2].split(",") if o.startswith("size=")][0]
    with open("/proc/self/status") as status:
        facts["cap_eff"] = [l.split()[1] for l in status if l.startswith("CapEff:")][0]
        status.seek(0)
        facts["no_new_privs"] = [l.split()[1] for l in status if l.startswith("NoNewPrivs:")][0]
    facts["uid"] = str(os.getuid())
    facts["cwd"] = os.getcwd()
    facts["argv"] = ",".join(sys.argv[1:])
    facts["lang"] = os.environ.get("GRADER_LANGUAGE", "")
    facts["hide"] = os.environ.get("HIDE_OUTPUT", "")
    facts["net"] = ",".join(sorted(os.listdir("/sys/class/net")))
    facts["root_write"] = attempt(lambda: open("/grader/written", "w"))
    facts["graders_write"] = attempt(lambda: open("/graders/written", "w"))
    facts["tmp_write"] = attempt(lambda: open("/tmp/written", "w").write("ok"))
    facts["answer_readable"] = attempt(lambda: open("/graders/answer.py").read())
    return ";".join(k + "=" + v for k, v in sorted(facts.items()))
)";

// GET on the engine's API as the test's own witness (the client has no call for mounts or volumes).
struct EngineWitness {
  std::unique_ptr<http::Transport> transport =
      http::make_curl_transport({.unix_socket = testing::engine_socket()});
  http::Response get(const std::string& path) {
    return transport->perform({.url = "http://docker/" + std::string(docker::kApiVersion) + path});
  }
};

class UpstreamContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "xqw-upstream-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    work_dir_ = pattern;
    image_ = engine_.inspect_image(kCompatImage);
    ASSERT_TRUE(image_) << kCompatImage
                        << " is missing: scripts/images builds it from images/upstream-compat";
    ASSERT_FALSE(declares_native_contract(*image_))
        << "the test image must be a plain upstream-contract image";
  }
  void TearDown() override {
    engine_.remove_by_label(orphan_filter(watcher_id_));
    fs::remove_all(work_dir_);
  }

  QueueGrading queue() const {
    QueueGrading queue{.queue = "legacy",
                       .watcher_id = watcher_id_,
                       .image = kCompatImage,
                       .grader_root = kCourse,
                       .work_dir = work_dir_,
                       .precreate = config::Precreate::Started,
                       .contract = config::ContractKind::Upstream,
                       .contract_implied = true};
    queue.limits.timeout = std::chrono::seconds(30);
    queue.limits.tmpfs_bytes = 8 << 20;
    return queue;
  }

  GradeReport grade(const std::string& problem, std::string response, std::string lang = "en") {
    const auto settings = queue();
    ContainerGrader grader(engine_, settings, queue_contract(settings, *image_));
    EXPECT_EQ(grader.precreate_mode(), config::Precreate::Off);
    const GradeJob job{.queue = "legacy",
                       .submission_id = "s" + testing::unique_suffix().substr(0, 8),
                       .grader = problem + "/grader.py",
                       .grader_payload = {{"grader", problem + "/grader.py"}},
                       .student_response = std::move(response),
                       .lang = std::move(lang),
                       .seed = 4242};
    return grader.grade(job);
  }

  docker::Client engine_{testing::engine_socket()};
  std::optional<docker::ImageInfo> image_;
  std::string watcher_id_ = "it-upstream-" + testing::unique_suffix();
  fs::path work_dir_;
};

TEST_F(UpstreamContractTest, RightAndWrongAnswersAreGradedFromTheLastLine) {
  const auto right = grade("square", kRight, "fr");
  ASSERT_EQ(right.outcome.verdict, Verdict::Graded) << right.outcome.staff_reason << right.staff_stderr;
  EXPECT_TRUE(right.outcome.result.correct);
  EXPECT_EQ(right.outcome.result.score, 1.0);
  EXPECT_EQ(right.outcome.result.tests.size(), 3u);
  EXPECT_THAT(right.staff_stdout, HasSubstr("compat-grader: grader=/graders/grader.py seed=4242 lang=fr"));
  EXPECT_EQ(right.html.find("compat-grader"), std::string::npos) << "the grader's prints are for staff";

  const auto wrong = grade("square", kWrong);
  ASSERT_EQ(wrong.outcome.verdict, Verdict::Graded) << wrong.outcome.staff_reason;
  EXPECT_FALSE(wrong.outcome.result.correct);
  EXPECT_EQ(wrong.outcome.result.score, 0.0);
  EXPECT_TRUE(engine_.list_by_label(orphan_filter(watcher_id_)).empty()) << "containers left after grading";
  EXPECT_TRUE(fs::is_empty(work_dir_)) << "no job directory under this contract";
}

TEST_F(UpstreamContractTest, AGraderThatCrashesIsAGraderError) {
  const auto report = grade("crash", kRight);
  EXPECT_EQ(report.outcome.verdict, Verdict::GraderError);
  EXPECT_NE(report.exit_code, 0);
  EXPECT_THAT(report.staff_stderr, HasSubstr("broken on purpose"));
}

TEST_F(UpstreamContractTest, TheLargestSubmissionTheVariableCarriesRunsAndOneByteMoreIsRefused) {
  // A Python comment of exactly the limit: the kernel must accept SUBMISSION_CODE at this size.
  const auto largest = grade("square", "#" + std::string(kMaxEnvSubmissionBytes - 1, 'x'));
  ASSERT_EQ(largest.outcome.verdict, Verdict::Graded) << largest.outcome.staff_reason << largest.staff_stderr;
  EXPECT_THAT(largest.staff_stdout,
              HasSubstr("submission of " + std::to_string(kMaxEnvSubmissionBytes) + " bytes"));

  const auto refused = grade("square", "#" + std::string(kMaxEnvSubmissionBytes, 'x'));
  EXPECT_EQ(refused.outcome.verdict, Verdict::SubmissionTooLarge);
  EXPECT_TRUE(refused.container_id.empty()) << "nothing was created";
  EXPECT_THAT(refused.html, HasSubstr("larger than the 127.98 KiB this problem accepts"));
}

TEST_F(UpstreamContractTest, EveryLimitAndHardeningHoldsInsideTheContainer) {
  const auto report = grade("probe", kProbe, "de");
  ASSERT_EQ(report.outcome.verdict, Verdict::Graded) << report.outcome.staff_reason << report.staff_stderr;
  ASSERT_EQ(report.outcome.result.tests.size(), 1u);
  const auto& facts = report.outcome.result.tests[0].actual_output;
  EXPECT_THAT(facts, HasSubstr("tmp_mounts=1;")) << "one mount at /tmp: ours, no volume under or over it";
  EXPECT_THAT(facts, HasSubstr("tmp_fs=tmpfs;"));
  EXPECT_THAT(facts, HasSubstr("tmp_size=size=8192k"));
  EXPECT_THAT(facts, HasSubstr("tmp_write=allowed"));
  EXPECT_THAT(facts, HasSubstr("cap_eff=0000000000000000"));
  EXPECT_THAT(facts, HasSubstr("no_new_privs=1"));
  EXPECT_THAT(facts, HasSubstr("uid=65534"));
  EXPECT_THAT(facts, HasSubstr("net=lo"));
  EXPECT_THAT(facts, HasSubstr("root_write=refused:Read-only file system"));
  EXPECT_THAT(facts, HasSubstr("graders_write=refused:Read-only file system"));
  EXPECT_THAT(facts, HasSubstr("cwd=/grader;"));
  EXPECT_THAT(facts, HasSubstr("argv=/graders/grader.py,4242;"));
  EXPECT_THAT(facts, HasSubstr("lang=de;"));
  EXPECT_THAT(facts, HasSubstr("hide=0;"));
  // What operators are told: student and staff code share one process, so the answer is readable.
  EXPECT_THAT(facts, HasSubstr("answer_readable=allowed"));
}

TEST_F(UpstreamContractTest, OurTmpfsReplacesTheImagesVolumeAndRemovalTakesAnonymousVolumesAlong) {
  EngineWitness witness;
  const ResolvedGrader grader{.problem_dir = kCourse / "square", .file_name = "grader.py"};
  const GradeJob job{.submission_id = "mounts", .student_response = kRight};
  auto inspect = [&](const std::string& id) {
    const auto response = witness.get("/containers/" + id + "/json");
    EXPECT_EQ(response.status, 200) << response.body;
    return nlohmann::json::parse(response.body);
  };
  auto volumes_of = [](const nlohmann::json& container) {
    std::vector<std::string> names;
    for (const auto& mount : container["Mounts"]) {
      if (mount["Type"] == "volume") names.push_back(mount["Name"]);
    }
    return names;
  };

  const auto ours = upstream_container_spec(queue(), grader, job);
  const auto ours_id = engine_.create_container(ours);
  const auto ours_json = inspect(ours_id);
  engine_.remove(ours_id);
  EXPECT_TRUE(volumes_of(ours_json).empty()) << ours_json["Mounts"].dump();
  EXPECT_THAT(ours_json["HostConfig"]["Tmpfs"]["/tmp"].get<std::string>(), HasSubstr("size=8388608"));

  // Without our tmpfs the engine honours the image's VOLUME /tmp with an anonymous volume: the control
  // that shows the check above can fail, and that removal takes such a volume along.
  auto without_tmpfs = ours;
  without_tmpfs.tmpfs.clear();
  const auto control_id = engine_.create_container(without_tmpfs);
  const auto control = volumes_of(inspect(control_id));
  engine_.remove(control_id);
  ASSERT_EQ(control.size(), 1u) << "the image declares VOLUME /tmp";
  EXPECT_EQ(witness.get("/volumes/" + control[0]).status, 404)
      << "anonymous volume " << control[0] << " left behind";
}

}  // namespace
}  // namespace xqw::grading
