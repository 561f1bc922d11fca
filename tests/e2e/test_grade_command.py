"""`xqueue-watcher grade`: every example exercise through the production path, and its exit codes."""
import json
import os
import subprocess
import unittest

from harness import BINARY, DEMO_COURSE, SOURCE_DIR, require_engine_and_image


def grade(*args):
    return subprocess.run([BINARY, "grade", *args], capture_output=True, text=True, timeout=120)


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


if __name__ == "__main__":
    unittest.main()
