"""`xqueue-watcher grade`: every example exercise through the production path, and its exit codes."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import BINARY, DEMO_COURSE, DOCKER_SOCKET, GRADER_IMAGE, SOURCE_DIR, require_engine_and_image
from config_root import write_config_root  # noqa: E402 (on the path once harness is imported)

RIGHT = os.path.join(DEMO_COURSE, "01-average/submissions/right.py")


def grade(*args, env=None):
    return subprocess.run([BINARY, "grade", *args], capture_output=True, text=True, timeout=120, env=env)


class GradeCommandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())
        with open(os.path.join(DEMO_COURSE, "expected.json")) as source:
            cls.expected = json.load(source)

    def test_every_example_grades_to_its_expected_score(self):
        self.assertGreaterEqual(len({k.split("/")[0] for k in self.expected}), 6)
        for relative, score in sorted(self.expected.items()):
            exercise = relative.split("/")[0]
            with self.subTest(submission=relative):
                run = grade("-d", SOURCE_DIR, "--queue", "demo-course", "--grader", f"{exercise}/grader.py",
                            os.path.join(DEMO_COURSE, relative), "--json", "--expect", repr(score))
                self.assertEqual(run.returncode, 0, run.stderr + run.stdout)
                result = json.loads(run.stdout)
                self.assertAlmostEqual(result["score"], score)
                self.assertEqual(result["verdict"], "graded")
                self.assertIn("result-", result["msg"])
                self.assertGreater(result["cpu_seconds"], 0)
                self.assertGreater(result["max_rss_bytes"], 1 << 20)

    def test_expect_mismatch_exits_one_for_course_ci(self):
        run = grade("--grader-root", DEMO_COURSE, "--grader", "01-average/grader.py",
                    os.path.join(DEMO_COURSE, "01-average/submissions/wrong.py"), "--expect", "1")
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("differs from --expect", run.stderr)
        self.assertIn("INCORRECT", run.stdout)
        self.assertIn("container:", run.stdout)
        self.assertRegex(run.stdout, r"resources: cpu \d+\.\d{3} s, peak memory [\d.]+ MiB \(limits: ")

    def test_missing_image_is_a_clear_error(self):
        run = grade("--grader-root", DEMO_COURSE, "--image", "xqueue-watcher/no-such-image:never",
                    "--grader", "01-average/grader.py", os.path.join(DEMO_COURSE, "01-average/submissions/right.py"))
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertIn("xqueue-watcher/no-such-image:never", run.stderr)

    def test_unknown_queue_is_refused(self):
        run = grade("-d", SOURCE_DIR, "--queue", "nope", "--grader", "01-average/grader.py",
                    os.path.join(DEMO_COURSE, "01-average/submissions/right.py"))
        self.assertEqual(run.returncode, 2)
        self.assertIn("queue nope is not configured", run.stderr)

    def test_grader_outside_the_root_is_refused_with_a_staff_reason(self):
        run = grade("--grader-root", DEMO_COURSE, "--grader", "../README.md", "--json",
                    os.path.join(DEMO_COURSE, "01-average/submissions/right.py"))
        self.assertEqual(run.returncode, 0, run.stderr)
        result = json.loads(run.stdout)
        self.assertEqual(result["verdict"], "grader_not_found")
        self.assertEqual(result["score"], 0)
        self.assertIn("'..'", result["staff_reason"])


class GradeCommandEngineTest(unittest.TestCase):
    """`grade -d` reaches the engine and pulls images exactly as the watcher on that config root would."""

    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="xqw-grade-engine-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.root])
        # The real engine under another name, known only to xqwatcher.yaml; DOCKER_HOST points nowhere.
        self.link = os.path.join(self.root, "engine.sock")
        os.symlink(DOCKER_SOCKET, self.link)
        self.env = dict(os.environ, XQW_GRADE_PW="pw", DOCKER_HOST="unix:///nonexistent/xqw/docker.sock")

    def config(self, manager_extra, **queue):
        write_config_root(self.root, 1, {"q": {"server": "default", "grader_root": DEMO_COURSE, **queue}},
                          poll_interval="1s", login_poll_interval="1s", requests_timeout="1s",
                          shutdown_grace="1s", password_variable="XQW_GRADE_PW", manager_extra=manager_extra)

    def test_docker_socket_wins_over_docker_host(self):
        self.config(f"docker_socket: unix://{self.link}\n", image=GRADER_IMAGE, pull_policy="never")
        run = grade("-d", self.root, "--queue", "q", "--grader", "01-average/grader.py", RIGHT, "--json",
                    env=self.env)
        self.assertEqual(run.returncode, 0, run.stderr + run.stdout)
        result = json.loads(run.stdout)
        self.assertEqual(result["verdict"], "graded")
        self.assertEqual(result["score"], 1)

    def test_without_docker_socket_docker_host_is_the_engine(self):
        self.config("", image=GRADER_IMAGE, pull_policy="never")
        run = grade("-d", self.root, "--queue", "q", "--grader", "01-average/grader.py", RIGHT, env=self.env)
        self.assertEqual(run.returncode, 3, run.stderr + run.stdout)
        self.assertIn("/nonexistent/xqw/docker.sock", run.stderr)

    def test_the_queues_pull_policy_applies(self):
        missing = "xqueue-watcher/no-such-image:never"
        self.config(f"docker_socket: {self.link}\n", image=missing, pull_policy="never")
        run = grade("-d", self.root, "--queue", "q", "--grader", "01-average/grader.py", RIGHT, env=self.env)
        self.assertEqual(run.returncode, 3, run.stderr + run.stdout)
        self.assertIn(f"image {missing} is not available: not present on the engine and pull policy is never",
                      run.stderr)

    def test_an_unusable_docker_host_is_named_not_guessed_at(self):
        env = dict(self.env, DOCKER_HOST="tcp://127.0.0.1:1")
        run = grade("--grader-root", DEMO_COURSE, "--grader", "01-average/grader.py", RIGHT, "--json", env=env)
        self.assertIn("warning: environment: DOCKER_HOST: 'tcp://127.0.0.1:1' is not supported", run.stderr)
        self.assertIn(f"using {DOCKER_SOCKET}", run.stderr)
        self.assertEqual(run.returncode, 0, run.stderr + run.stdout)
        self.assertEqual(json.loads(run.stdout)["score"], 1)


if __name__ == "__main__":
    unittest.main()
