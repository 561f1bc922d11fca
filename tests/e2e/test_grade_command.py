"""`xqueue-watcher grade`: every example exercise through the production path, and its exit codes;
`grade --course`: the whole demo course against expected.json, its table, JSON, exit codes and Ctrl-C."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (BINARY, DEMO_COURSE, DOCKER_SOCKET, GRADER_IMAGE, SOURCE_DIR, containers_labelled,
                     require_engine_and_image)
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


def grade_course(*args, watcher_id=None, timeout=600):
    head = [BINARY] + (["--watcher-id", watcher_id] if watcher_id else []) + ["grade", "--course"]
    return subprocess.run(head + list(args), capture_output=True, text=True, timeout=timeout)


def table_rows(stdout):
    """The table's rows by submission: {key: [score, expected, verdict, result, time]}."""
    rows = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6 and "/submissions/" in cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


class GradeCourseTest(unittest.TestCase):
    """The demo course, every sample graded once per run: with the queue's limits (-d), as a table, two at
    a time; and in image mode as JSON."""

    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())
        with open(os.path.join(DEMO_COURSE, "expected.json")) as source:
            cls.expected = json.load(source)
        cls.watcher_id = f"grade-course-test-{os.getpid()}"
        cls.table = grade_course(DEMO_COURSE, "-d", SOURCE_DIR, "--queue", "demo-course", "-j", "2",
                                 "--progress", "lines", "--color", "never", watcher_id=cls.watcher_id)
        cls.json_run = grade_course(DEMO_COURSE, "--image", GRADER_IMAGE, "--json", "-j", "2", "--progress",
                                    "bar")

    def test_every_sample_matches_and_the_table_lists_each(self):
        run = self.table
        self.assertEqual(run.returncode, 0, run.stderr + run.stdout)
        rows = table_rows(run.stdout)
        self.assertEqual(set(rows), set(self.expected))
        for key, (score, expected, verdict, result, elapsed) in rows.items():
            with self.subTest(submission=key):
                self.assertEqual(result, "ok")
                self.assertEqual(verdict, "graded")
                self.assertAlmostEqual(float(score), self.expected[key], places=5)
                self.assertAlmostEqual(float(expected), self.expected[key], places=5)
                self.assertRegex(elapsed, r"^\d+\.\d\d s$")
        self.assertRegex(run.stdout.splitlines()[0], r"^submission\s+score\s+expected\s+verdict\s+result\s+time$")
        self.assertIn(f"{len(self.expected)} submissions: {len(self.expected)} ok in ", run.stdout)
        self.assertIn("with 2 at once", run.stdout)
        self.assertNotIn("\033[", run.stdout)

    def test_progress_is_one_line_per_submission_off_a_terminal(self):
        lines = [line for line in self.table.stderr.splitlines() if re.match(r"^\[\s*\d+/21\] ", line)]
        self.assertEqual(len(lines), len(self.expected), self.table.stderr)
        self.assertEqual({re.search(r"\] ok\s+(\S+)  score", line).group(1) for line in lines},
                         set(self.expected))
        self.assertTrue(lines[-1].startswith("[21/21] "), lines[-1])

    def test_no_container_of_the_run_is_left(self):
        self.assertEqual(containers_labelled(self.watcher_id), [])

    def test_json_report_has_every_submission(self):
        run = self.json_run
        self.assertEqual(run.returncode, 0, run.stderr + run.stdout)
        report = json.loads(run.stdout)
        self.assertEqual({entry["submission"] for entry in report["submissions"]}, set(self.expected))
        for entry in report["submissions"]:
            with self.subTest(submission=entry["submission"]):
                self.assertTrue(entry["ok"], entry)
                self.assertEqual(entry["result"], "ok")
                self.assertAlmostEqual(entry["score"], self.expected[entry["submission"]])
                self.assertEqual(entry["grader"], entry["submission"].split("/")[0] + "/grader.py")
        self.assertEqual(report["summary"]["ok"], len(self.expected))
        self.assertEqual((report["exit_code"], report["jobs"], report["image"]), (0, 2, GRADER_IMAGE))
        self.assertIsNone(report["queue"])
        self.assertIn(f"{len(self.expected)} submissions: {len(self.expected)} ok", run.stderr)
        # --progress bar off a terminal: redrawn in place (carriage return, then erase to the end of the line;
        # text mode reads the carriage returns as newlines), ending full.
        self.assertIn("\n[------------------------]  0/21\x1b[K\n", run.stderr)
        self.assertIn("\n[########################] 21/21", run.stderr)


class GradeCourseMismatchTest(unittest.TestCase):
    """A copy of the course whose expected.json has one score changed: exit 1 and the mismatch named."""

    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())

    def setUp(self):
        self.course = os.path.join(tempfile.mkdtemp(prefix="xqw-course-"), "course")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.course))
        shutil.copytree(os.path.join(DEMO_COURSE, "01-average"), os.path.join(self.course, "01-average"))

    def write_expected(self, text, name="expected.json"):
        path = os.path.join(self.course, name)
        with open(path, "w") as out:
            out.write(text)
        return path

    def test_a_changed_expectation_exits_one_and_names_the_mismatch(self):
        self.write_expected(json.dumps({"01-average/submissions/right.py": 1.0,
                                        "01-average/submissions/wrong.py": 0.5,
                                        "01-average/submissions/error.py": 0.0}))
        run = grade_course(self.course, "--image", GRADER_IMAGE, "--progress", "off")
        self.assertEqual(run.returncode, 1, run.stderr + run.stdout)
        self.assertIn("MISMATCH 01-average/submissions/wrong.py: scored 0.333333, expected 0.5", run.stdout)
        rows = table_rows(run.stdout)
        self.assertEqual([rows[k][3] for k in sorted(rows)], ["ok", "ok", "MISMATCH"])
        self.assertIn("3 submissions: 2 ok, 1 MISMATCH", run.stdout)
        self.assertEqual(run.stderr, "")  # --progress off

    def test_json_mismatch_is_in_the_report(self):
        path = self.write_expected(json.dumps({"01-average/submissions/right.py": 0.0}), "other.json")
        run = grade_course(self.course, "--expectations", path, "--json", "--progress", "off")
        self.assertEqual(run.returncode, 1, run.stderr + run.stdout)
        report = json.loads(run.stdout)
        self.assertEqual(report["exit_code"], 1)
        [entry] = report["submissions"]
        self.assertEqual((entry["result"], entry["ok"], entry["score"], entry["expected"]),
                         ("MISMATCH", False, 1, 0))

    def assert_bad_input(self, run, *named):
        self.assertEqual(run.returncode, 2, run.stderr + run.stdout)
        self.assertEqual(run.stdout, "")
        for text in named:
            self.assertIn(text, run.stderr)

    def test_a_missing_expectations_file(self):
        path = os.path.join(self.course, "expected.json")
        self.assert_bad_input(grade_course(self.course), f"{path}: no such expectations file")

    def test_a_key_naming_a_missing_file(self):
        path = self.write_expected('{"01-average/submissions/right.py": 1, "01-average/submissions/gone.py": 1}')
        self.assert_bad_input(grade_course(self.course), f'{path}: key "01-average/submissions/gone.py": no such file '
                              f"{self.course}/01-average/submissions/gone.py")

    def test_not_json(self):
        path = self.write_expected('{"01-average/submissions/right.py": 1,}')
        self.assert_bad_input(grade_course(self.course), f"{path}: is not JSON: ", "line 1")

    def test_a_score_that_is_not_a_number(self):
        path = self.write_expected('{"01-average/submissions/right.py": "full marks"}')
        self.assert_bad_input(grade_course(self.course),
                              f'{path}: key "01-average/submissions/right.py": the expected score must be a '
                              'number, not a string')

    def test_a_key_outside_a_submissions_directory(self):
        path = self.write_expected('{"01-average/answer.py": 1}')
        self.assert_bad_input(grade_course(self.course), f'{path}: key "01-average/answer.py": is not in a problem')

    def test_a_missing_course_directory(self):
        self.assert_bad_input(grade_course(self.course + "-nope"), f"--course {self.course}-nope: no such directory")

    def test_jobs_out_of_bounds(self):
        self.write_expected('{"01-average/submissions/right.py": 1}')
        self.assert_bad_input(grade_course(self.course, "-j", "0"), "-j 0: must be between 1 and 32")
        self.assert_bad_input(grade_course(self.course, "-j", "33"), "-j 33: must be between 1 and 32")

    def test_course_excludes_a_single_submission(self):
        for option in ("--grader", "--grader-root"):
            run = grade_course(self.course, option, "01-average")
            self.assertNotEqual(run.returncode, 0)
            self.assertIn(f"{option} excludes --course", run.stderr)

    def test_a_missing_image_is_grading_unavailable(self):
        self.write_expected('{"01-average/submissions/right.py": 1}')
        run = grade_course(self.course, "--image", "xqueue-watcher/no-such-image:never")
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertIn("xqueue-watcher/no-such-image:never", run.stderr)


class GradeCourseInterruptTest(unittest.TestCase):
    """Ctrl-C while a submission grades: the run stops, its containers are removed, the exit is 130."""

    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())

    def interrupt_once_a_container_runs(self, run, watcher_id):
        self.addCleanup(lambda: run.poll() is None and run.kill())
        deadline = time.time() + 120
        while not containers_labelled(watcher_id):
            self.assertIsNone(run.poll(), "the run ended before any container of it was seen")
            self.assertLess(time.time(), deadline, "no container of the run appeared within 120 s")
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        return run.communicate(timeout=120)

    def test_ctrl_c_during_one_grade_removes_its_container(self):
        looping = os.path.join(tempfile.mkdtemp(prefix="xqw-loop-"), "loop.py")
        self.addCleanup(shutil.rmtree, os.path.dirname(looping))
        with open(looping, "w") as out:
            out.write("def average(values):\n    while True:\n        pass\n")
        watcher_id = f"grade-one-interrupt-{os.getpid()}"
        run = subprocess.Popen([BINARY, "--watcher-id", watcher_id, "grade", "--grader-root", DEMO_COURSE,
                                "--grader", "01-average/grader.py", looping],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = time.time()
        stdout, stderr = self.interrupt_once_a_container_runs(run, watcher_id)
        self.assertEqual(run.returncode, 130, stderr + stdout)
        self.assertLess(time.time() - started, 60)
        self.assertIn("Interrupt: stopping; removing the containers in flight", stderr)
        self.assertEqual(stdout, "")
        self.assertEqual(containers_labelled(watcher_id), [])

    def test_ctrl_c_removes_the_containers_and_exits_non_zero(self):
        watcher_id = f"grade-course-interrupt-{os.getpid()}"
        run = subprocess.Popen([BINARY, "--watcher-id", watcher_id, "grade", "--course", DEMO_COURSE,
                                "--image", GRADER_IMAGE, "--progress", "lines"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = self.interrupt_once_a_container_runs(run, watcher_id)
        self.assertEqual(run.returncode, 130, stderr + stdout)
        self.assertIn("Interrupt: stopping; removing the containers in flight", stderr)
        self.assertRegex(stdout, r"21 submissions: \d+ ok, interrupted \(\d+ not graded\)")
        self.assertIn("not run", stdout)
        self.assertEqual(containers_labelled(watcher_id), [])


if __name__ == "__main__":
    unittest.main()
