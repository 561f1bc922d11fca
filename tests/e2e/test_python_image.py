"""End-to-end tests of the Python grader image, run as the watcher runs it.

Each test starts the real image through the docker CLI with the production
settings (read-only root, /tmp tmpfs, only CAP_SETUID/CAP_SETGID, uid 0:0,
no-new-privileges, no network, memory and pids limits) and the problem and job
directories mounted read-only where the image's labels say, then checks the one
JSON result on stdout.

The image comes from XQW_PYTHON_IMAGE (default xqueue-watcher/python-grader:latest).
A missing engine or image fails the tests with the reason; nothing is skipped.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

IMAGE = os.environ.get("XQW_PYTHON_IMAGE", "xqueue-watcher/python-grader:latest")
SOURCE_DIR = os.environ.get(
    "XQW_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
EXAMPLES_DIR = os.path.join(SOURCE_DIR, "examples", "demo-course")
FIXTURES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "python_image")
SECRET_PROBLEM = os.path.join(FIXTURES_DIR, "secret")
ATTACKS_DIR = os.path.join(FIXTURES_DIR, "attacks")
RESULT_KEYS = {"correct", "score", "errors", "tests"}


def production_flags(memory="256m", pids=128, tmp_size="64m"):
    """The container settings the watcher uses for an image labelled supervisor=setuid."""
    return [
        "--network", "none", "--read-only",
        "--tmpfs", "/tmp:rw,size=%s,mode=1777" % tmp_size,
        "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID",
        "--security-opt", "no-new-privileges", "--user", "0:0",
        "--memory", memory, "--memory-swap", memory, "--pids-limit", str(pids),
    ]


def engine_problem():
    """Why the engine or the image cannot be used, or None."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return "the Docker engine does not answer: %s" % probe.stderr.strip()
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True,
                           timeout=60)
    if image.returncode != 0:
        return "the image %s is missing (build it with scripts/images, or set XQW_PYTHON_IMAGE)" % IMAGE
    return None


def image_labels():
    inspected = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", IMAGE],
                               capture_output=True, text=True, check=True, timeout=60)
    return json.loads(inspected.stdout)


def engine_time(text):
    """An engine timestamp (RFC 3339, nanoseconds) as a datetime."""
    found = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    assert found, "not an engine timestamp: %r" % text
    stamp = found.group(1) + "." + (found.group(2) or "0")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(stamp + found.group(3).replace("Z", "+00:00"))


def container_run_seconds(container_id):
    """How long the container ran, from the engine's own State.StartedAt to State.FinishedAt."""
    inspected = subprocess.run(["docker", "inspect", "--format", "{{.State.StartedAt}} {{.State.FinishedAt}}",
                                container_id], capture_output=True, text=True, check=True, timeout=60)
    started, finished = inspected.stdout.split()
    return (engine_time(finished) - engine_time(started)).total_seconds()


class Run:
    """One container run: exit status, raw stdout/stderr, the parsed result, duration (of the whole
    `docker run`; `container_seconds`, when asked for, is the container's own run as the engine saw it)."""

    def __init__(self, completed, seconds):
        self.container_seconds = None
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr.decode("utf-8", "replace")
        self.seconds = seconds
        try:
            self.result = json.loads(self.stdout.decode("utf-8"))
        except ValueError:
            self.result = None

    def describe(self):
        return "exit %s after %.2fs\nstdout: %r\nstderr: %s" % (
            self.returncode, self.seconds, self.stdout[:3000], self.stderr[-3000:])


def grade(problem_dir, submission, grader="grader.py", seed=1234, lang="en", hide_output=False,
          timeout_seconds=20, payload=None, wall_timeout=120, container_seconds=False):
    """Grade ``submission`` (bytes or str) against ``problem_dir`` in a fresh container;
    ``container_seconds``: also measure the container's own run (the watcher's deadline counts from its
    start), whatever the docker CLI and a busy host add around it."""
    if isinstance(submission, str):
        submission = submission.encode("utf-8")
    job_dir = tempfile.mkdtemp(prefix="xqw-e2e-job-")
    cid_dir = tempfile.mkdtemp(prefix="xqw-e2e-cid-")
    cid_file = os.path.join(cid_dir, "cid")
    try:
        os.chmod(job_dir, 0o755)
        with open(os.path.join(job_dir, "submission"), "wb") as handle:
            handle.write(submission)
        job = {"grader": grader, "seed": seed,
               "grader_payload": payload if payload is not None else {"grader": "demo/" + grader},
               "student_info": {"anonymous_student_id": "e2e"}, "lang": lang,
               "hide_output": hide_output, "timeout_seconds": timeout_seconds}
        with open(os.path.join(job_dir, "job.json"), "w") as handle:
            json.dump(job, handle)
        for name in os.listdir(job_dir):
            os.chmod(os.path.join(job_dir, name), 0o644)
        removal = ["--cidfile", cid_file] if container_seconds else ["--rm"]
        command = ["docker", "run"] + removal + production_flags() + [
            "-v", "%s:/xqw/private/grader:ro" % os.path.abspath(problem_dir),
            "-v", "%s:/xqw/private/job:ro" % job_dir, IMAGE]
        started = time.monotonic()
        completed = subprocess.run(command, capture_output=True, timeout=wall_timeout)
        run = Run(completed, time.monotonic() - started)
        if container_seconds:
            run.container_seconds = container_run_seconds(read_bytes(cid_file).decode().strip())
        return run
    finally:
        if os.path.exists(cid_file):
            subprocess.run(["docker", "rm", "-f", read_bytes(cid_file).decode().strip()], capture_output=True,
                           timeout=60)
        shutil.rmtree(cid_dir, ignore_errors=True)
        shutil.rmtree(job_dir, ignore_errors=True)


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


class ImageTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        problem = engine_problem()
        if problem:
            raise AssertionError("cannot run the Python grader image tests: " + problem)

    def assertNormalResult(self, run):
        """Exit 0 and exactly one JSON object of the upstream result shape on stdout."""
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertIsNotNone(run.result, run.describe())
        self.assertEqual(run.stdout.count(b"\n"), 1, "stdout must be one JSON line: " + run.describe())
        self.assertEqual(set(run.result), RESULT_KEYS, run.describe())
        self.assertIsInstance(run.result["correct"], bool)
        self.assertTrue(0.0 <= run.result["score"] <= 1.0, run.describe())
        for test in run.result["tests"]:
            self.assertEqual(len(test), 5, run.describe())
        return run.result


class ContractTest(ImageTestCase):
    def test_labels_declare_mounts_and_supervisor(self):
        labels = image_labels()
        self.assertEqual(labels.get("org.openedx.xqueue-watcher.grader-dir"), "/xqw/private/grader")
        self.assertEqual(labels.get("org.openedx.xqueue-watcher.job-dir"), "/xqw/private/job")
        self.assertEqual(labels.get("org.openedx.xqueue-watcher.supervisor"), "setuid")

    def test_private_directory_is_root_only(self):
        listing = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "stat", IMAGE, "-c", "%a %u %g %n",
             "/xqw/private", "/xqw/private/grader", "/xqw/private/job"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertEqual(listing.stdout.splitlines()[0], "700 0 0 /xqw/private")


class ExampleCourseTest(ImageTestCase):
    def test_every_example_submission_gets_its_expected_score(self):
        with open(os.path.join(EXAMPLES_DIR, "expected.json")) as handle:
            expected = json.load(handle)
        self.assertGreaterEqual(len({key.split("/")[0] for key in expected}), 6)
        for sample, score in sorted(expected.items()):
            with self.subTest(sample=sample):
                problem = os.path.join(EXAMPLES_DIR, sample.split("/")[0])
                run = grade(problem, read_bytes(os.path.join(EXAMPLES_DIR, sample)))
                result = self.assertNormalResult(run)
                self.assertAlmostEqual(result["score"], score, places=9, msg=run.describe())
                self.assertEqual(result["correct"], score == 1.0, run.describe())

    def test_locale_translates_grader_and_gradelib_texts(self):
        problem = os.path.join(EXAMPLES_DIR, "06-greeting-locale")
        run = grade(problem, read_bytes(os.path.join(problem, "submissions", "wrong.py")), lang="fr")
        result = self.assertNormalResult(run)
        self.assertEqual(result["tests"][0][0], "Salutation de Ada")
        self.assertEqual(result["tests"][0][1], "La salutation commence par le mot Hello.")
        missing = self.assertNormalResult(grade(problem, "def hello(name):\n    return name\n", lang="fr"))
        self.assertEqual(missing["errors"], ["Votre code doit définir une fonction nommée 'greet'."])

    def test_hide_output_keeps_the_score_but_no_details(self):
        problem = os.path.join(EXAMPLES_DIR, "01-average")
        run = grade(problem, read_bytes(os.path.join(problem, "submissions", "wrong.py")), hide_output=True)
        result = self.assertNormalResult(run)
        self.assertEqual(result["tests"], [])
        self.assertAlmostEqual(result["score"], 1 / 3)
        self.assertFalse(result["correct"])


class StaffAndInputErrorsTest(ImageTestCase):
    def test_broken_staff_answer_gives_the_staff_debug_error(self):
        run = grade(os.path.join(FIXTURES_DIR, "broken_answer"), "def double(n):\n    return 2 * n\n")
        result = self.assertNormalResult(run)
        self.assertFalse(result["correct"])
        self.assertEqual(len(result["errors"]), 1)
        self.assertTrue(result["errors"][0].startswith(
            "There was a problem running the staff solution (Staff debug:"), result)
        self.assertIn("undefined_factor", run.stderr, "staff debug details belong on stderr")
        self.assertNotIn("undefined_factor", json.dumps(result))

    def test_invalid_utf8_gives_a_clear_error(self):
        run = grade(SECRET_PROBLEM, b"def secret():\n    return '\xff\xfe'\n")
        result = self.assertNormalResult(run)
        self.assertEqual(result["score"], 0.0)
        self.assertIn("not valid UTF-8", result["errors"][0])
        self.assertIn("0xff", result["errors"][0])

    def test_five_megabyte_submission_arrives_intact(self):
        problem = os.path.join(FIXTURES_DIR, "big_submission")
        sys.path.insert(0, problem)
        try:
            import bigdata
        finally:
            sys.path.remove(problem)
        submission = ("# -*- coding: utf-8 -*-\nDATA = %r\n" % bigdata.make_data()).encode("utf-8")
        self.assertGreaterEqual(len(submission), 5 * 1024 * 1024)
        result = self.assertNormalResult(grade(problem, submission))
        self.assertTrue(result["correct"], result)
        truncated = self.assertNormalResult(grade(problem, submission[:-200] + b"'\n"))
        self.assertFalse(truncated["correct"])


class IntegrityTest(ImageTestCase):
    """Each attack runs as the submission; only the staff token would pass."""

    def grade_attack(self, name, **job):
        run = grade(SECRET_PROBLEM, read_bytes(os.path.join(ATTACKS_DIR, name + ".py")), **job)
        result = self.assertNormalResult(run)
        self.assertFalse(result["correct"], run.describe())
        self.assertEqual(result["score"], 0.0, run.describe())
        for test in result["tests"]:
            self.assertNotIn("SECRET-", test[4], "the submission read the staff answer")
        return result, run

    def test_the_token_passes_so_the_attacks_are_meaningful(self):
        result = self.assertNormalResult(
            grade(SECRET_PROBLEM, "def secret():\n    return 'SECRET-7f3a9c1e-staff-only-token'\n"))
        self.assertTrue(result["correct"])

    def test_import_answer(self):
        result, _ = self.grade_attack("import_answer")
        self.assertIn("No module named 'answer'", result["tests"][0][4])

    def test_open_answer_by_path(self):
        result, _ = self.grade_attack("read_answer_paths")
        self.assertIn("Permission denied: '/xqw/private/grader/answer.py'", result["tests"][0][4])

    def test_search_tmp_and_proc_for_a_copy(self):
        result, _ = self.grade_attack("search_tmp_and_proc")
        self.assertEqual(result["tests"][0][4], "'nothing found'\n")

    def test_patch_gradelib_compare_and_json(self):
        self.grade_attack("patch_grading")

    def test_forged_json_then_os_exit(self):
        result, _ = self.grade_attack("forged_json_then_exit")
        self.assertIn("ended the grading process", result["errors"][0])

    def test_write_fd1_proc1_fd1_and_dev_stdout(self):
        result, _ = self.grade_attack("write_container_stdout")
        self.assertIn("/proc/1/fd/1: [Errno 13] Permission denied", result["tests"][0][4])

    def test_detached_process_printing_later(self):
        _, run = self.grade_attack("detached_printer", container_seconds=True)
        self.assertLess(run.container_seconds, 10, "the container must not wait for the stray process")

    def test_replace_sys_stdout(self):
        result, _ = self.grade_attack("replace_sys_stdout")
        self.assertEqual(result["tests"][0][4], "")

    def test_forged_report_frames_on_every_fd(self):
        self.grade_attack("forge_report_frames")

    def test_kill_pid1_and_everything(self):
        self.grade_attack("kill_everything")

    def test_fork_bomb(self):
        self.grade_attack("fork_bomb")

    def test_endless_loop_is_stopped_before_the_deadline(self):
        deadline = 4  # job.json timeout_seconds: the watcher kills the container this long after starting it
        result, run = self.grade_attack("endless_loop", timeout_seconds=deadline, container_seconds=True)
        self.assertIn("took too long", result["errors"][0])
        self.assertLess(run.container_seconds, deadline,
                        "the container must end with its result before the watcher's deadline: " + run.describe())

    def test_memory_hog(self):
        result, _ = self.grade_attack("memory_hog")
        self.assertIn("too much memory", result["errors"][0])


if __name__ == "__main__":
    unittest.main()
