"""The supervisor end to end: real child interpreters, real uid switches (run-tests gives the
container the production capabilities), one JSON result on stdout."""

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from grader_support import _contract, _processes, _supervisor

from support import SUPERVISOR, Workspace, finished, mo_file, run_supervisor

ADD_GRADER = """\
from grader_support import gradelib
grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("add"))
grader.add_test(gradelib.InvokeStudentFunctionTest("add", [2, 3]))
grader.add_test(gradelib.InvokeStudentFunctionTest("add", [-1, 1]))
"""
ADD_ANSWER = "def add(a, b):\n    return a + b\n"
ACCEPT_ANYTHING = "lambda expected, actual: True"


def problem(grader=ADD_GRADER, answer=ADD_ANSWER, **extra):
    files = {"grader.py": grader, "answer.py": answer}
    files.update(extra)
    return files


class SupervisorTestCase(unittest.TestCase):
    files = problem()

    def setUp(self):
        self.workspace = Workspace(self.files)

    def tearDown(self):
        self.workspace.close()

    def grade(self, submission, **job):
        run = self.workspace.grade(submission, **job)
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertIsNotNone(run.result, run.describe())
        self.assertEqual(run.stdout.count(b"\n"), 1, run.describe())
        self.assertEqual(set(run.result), {"correct", "score", "errors", "tests"})
        return run


class BasicGradingTest(SupervisorTestCase):
    def test_right_answer(self):
        run = self.grade("def add(a, b):\n    return b + a\n")
        self.assertEqual(run.result, {"correct": True, "score": 1.0, "errors": [], "tests": [
            ["Test: add(2, 3)", "", True, "5\n", "5\n"], ["Test: add(-1, 1)", "", True, "0\n", "0\n"]]})

    def test_partly_wrong_answer(self):
        run = self.grade("def add(a, b):\n    return a * b + 1\n")
        self.assertEqual((run.result["correct"], run.result["score"]), (False, 0.5))
        self.assertEqual(run.outputs, ["7\n", "0\n"])

    def test_student_exception_is_a_short_traceback_without_paths(self):
        run = self.grade("def add(a, b):\n    return a + missing\n")
        self.assertEqual(run.result["score"], 0.0)
        output = run.outputs[0]
        self.assertTrue(output.startswith('Traceback (most recent call last):\n'
                                          '  File "submission.py", line 2'), output)
        self.assertIn("NameError: name 'missing' is not defined", output)
        for leaked in ("/tmp/", "/xqw", "/opt/xqw", "_runner", "gradelib.py"):
            self.assertNotIn(leaked, output)

    def test_import_error_is_shown_as_the_error(self):
        run = self.grade("def add(a, b)\n    return a + b\n")
        self.assertEqual(run.result["tests"], [])
        self.assertEqual(len(run.result["errors"]), 1)
        self.assertIn('File "submission.py", line 1', run.result["errors"][0])
        self.assertIn("SyntaxError", run.result["errors"][0])

    def test_input_check_complaints_stop_grading(self):
        run = self.grade("x = 1\n")
        self.assertEqual(run.result, {"correct": False, "score": 0.0, "tests": [],
                                      "errors": ["Your code must define a function named 'add'."]})

    def test_hide_output_drops_tests_but_keeps_the_score(self):
        run = self.grade("def add(a, b):\n    return a * b + 1\n", hide_output=True)
        self.assertEqual((run.result["score"], run.result["tests"]), (0.5, []))

    def test_skip_grader_gives_full_marks_without_running(self):
        run = self.grade("this is not python", grader_payload={"grader": "g.py", "skip_grader": True})
        self.assertEqual((run.result["correct"], run.result["score"]), (True, 1.0))

    def test_invalid_utf8_is_a_clear_error(self):
        submission = b"def add(a, b):\n    return a + b  # caf\xe9\n"
        run = self.grade(submission)
        self.assertEqual(run.result["score"], 0.0)
        self.assertIn("not valid UTF-8", run.result["errors"][0])
        self.assertIn("byte 0xe9 at position %d" % submission.index(b"\xe9"), run.result["errors"][0])

    def test_windows_line_endings_and_tabs(self):
        run = self.grade("def add(a, b):\r\n    total = a\r\n\ttotal += b\r\n    return total\r\n")
        self.assertTrue(run.result["correct"], run.result)


class StaffProblemTest(unittest.TestCase):
    def grade(self, files, **job):
        workspace = Workspace(files)
        try:
            run = workspace.grade("def add(a, b):\n    return a + b\n", **job)
        finally:
            workspace.close()
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual(run.result["errors"], [
            "There was a problem running the staff solution (Staff debug: L364)"], run.describe())
        self.assertEqual(run.result["score"], 0.0)
        return run

    def test_answer_that_raises(self):
        run = self.grade(problem(answer="def add(a, b):\n    return a + undefined_name\n"))
        self.assertIn("undefined_name", run.stderr)

    def test_answer_that_fails_to_import(self):
        self.grade(problem(answer="import no_such_module\n"))

    def test_missing_answer(self):
        files = problem()
        del files["answer.py"]
        self.assertIn("answer.py", self.grade(files).stderr)

    def test_grader_that_fails_to_load(self):
        self.assertIn("boom", self.grade(problem(grader="raise RuntimeError('boom')\n")).stderr)

    def test_missing_grader_file(self):
        self.grade(problem(), grader="other.py")

    def test_translated_staff_error(self):
        mo = mo_file({"There was a problem running the staff solution (Staff debug: L364)": "Staff kaputt"})
        files = problem(answer="raise SystemExit(3)\n")
        files["conf/locale/de/LC_MESSAGES/graders.mo"] = mo
        workspace = Workspace(files)
        try:
            run = workspace.grade("def add(a, b):\n    return a + b\n", lang="de")
        finally:
            workspace.close()
        self.assertEqual(run.result["errors"], ["Staff kaputt"])


class GradelibSemanticsTest(SupervisorTestCase):
    files = problem(grader="""\
        import random
        from grader_support import gradelib
        import helper

        grader = gradelib.Grader()
        NUMBERS = [gradelib.rand.randint(0, 10 ** 9) for _ in range(3)]
        PREPROCESSED = []

        def remember(code):
            PREPROCESSED.append(len(code))
            return code
        grader.add_preprocessor(remember)

        def seeded(module):
            print(NUMBERS, random.random(), module.pick(), helper.describe())
        grader.add_test(gradelib.Test(seeded, _("Seeded values")))

        def fresh_state(module):
            module.bump()
            print("helper calls:", helper.CALLS, "preprocessed in this process:", PREPROCESSED)
        grader.add_test(gradelib.Test(fresh_state, "Fresh state"))

        def long_output(module):
            print("x" * 6000)
        grader.add_test(gradelib.Test(long_output, "Long output"))

        def tolerant(expected, actual):
            if not actual.strip().isdigit():
                raise gradelib.EndTest("expected digits")
            return True
        grader.add_test(gradelib.Test(lambda module: print(module.label()), "Digits", compare=tolerant))

        def ends(module):
            if module.label() != "42":
                grader.end_test("label must be 42")
            print("label ok")
        grader.add_test(gradelib.Test(ends, "End test"))

        def raises_end_test(module):
            raise gradelib.EndTest("stopped early")
        grader.add_test(gradelib.Test(raises_end_test, "Direct EndTest"))
        """, answer="""\
        import random
        import helper

        def pick():
            return random.randint(0, 1000)

        def bump():
            helper.CALLS += 1

        def label():
            return "42"
        """, **{"helper.py": "CALLS = 0\n\ndef describe():\n    return 'helper ok'\n",
                "conf/locale/de/LC_MESSAGES/graders.mo": mo_file({"Seeded values": "Gesetzte Werte"})})

    STUDENT = """\
import random
import helper

def pick():
    return random.randint(0, 1000)

def bump():
    helper.CALLS += 1

def label():
    return LABEL

LABEL = "42"
"""

    def test_seeds_helpers_and_fresh_interpreters(self):
        run = self.grade(self.STUDENT)
        tests = run.result["tests"]
        self.assertEqual(tests[0][2:4], [True, tests[0][4]], run.result)
        self.assertIn("helper ok", tests[0][4])
        self.assertEqual(tests[1][4], "helper calls: 1 preprocessed in this process: []\n")
        self.assertTrue(tests[1][2])

    def test_actual_output_is_truncated_at_5000_characters(self):
        tests = self.grade(self.STUDENT).result["tests"]
        self.assertEqual(tests[2][3], "x" * 6000 + "\n")
        self.assertEqual(tests[2][4], "x" * 5000 + "...OUTPUT TRUNCATED")
        self.assertFalse(tests[2][2])

    def test_end_test_from_compare_and_from_tests(self):
        run = self.grade(self.STUDENT.replace('LABEL = "42"', 'LABEL = "forty-two"'))
        tests = {test[0]: test for test in run.result["tests"]}
        self.assertEqual(tests["Digits"][4], "forty-two\n\n*** ERROR: expected digits ***")
        self.assertFalse(tests["Digits"][2])
        self.assertEqual(tests["End test"][4], "*** Error: label must be 42\n")
        self.assertEqual(tests["Direct EndTest"][3], "*** Error: stopped early\n")
        self.assertTrue(tests["Direct EndTest"][2])

    def test_swallowing_end_test_is_reported(self):
        swallower = self.STUDENT.replace(
            "def label():\n    return LABEL",
            "def label():\n    try:\n        GRADER.end_test('x')\n"
            "    except:\n        pass\n    return 'nope'")
        swallower += "import sys\nGRADER = sys.modules['grader'].grader\n"
        run = self.grade(swallower)
        self.assertEqual(run.result["errors"],
                         ["Your code interfered with our grader.  Don't use bare 'except' clauses."])

    def test_language_of_the_job(self):
        self.assertEqual(self.grade(self.STUDENT, lang="de").result["tests"][0][0], "Gesetzte Werte")
        self.assertEqual(self.grade(self.STUDENT, lang="fr").result["tests"][0][0], "Seeded values")


class IsolationTest(SupervisorTestCase):
    files = problem(grader="""\
        from grader_support import gradelib
        grader = gradelib.Grader()
        grader.add_test(gradelib.Test(lambda module: print(module.probe()), "probe",
                                      compare=lambda expected, actual: True))
        """, answer="def probe():\n    return 'answer'\n", **{"data/table.txt": "row\n"})

    def probe(self, body, **job):
        run = self.grade("def probe():\n" + "".join("    %s\n" % line for line in body.splitlines()), **job)
        return run.outputs[0]

    def test_student_runs_unprivileged(self):
        output = self.probe(
            "import os\n"
            "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
            "return (os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), status['CapEff'].strip(),"
            " status['CapPrm'].strip(), status['NoNewPrivs'].strip())")
        self.assertEqual(output, "(10001, 10001, 10001, [], '0000000000000000', '0000000000000000', '1')\n")

    def test_student_environment(self):
        output = self.probe(
            "import os\n"
            "env = dict(os.environ)\n"
            "home = env.pop('HOME')\n"
            "return sorted((k, env[k]) for k in ('TMPDIR', 'LANG', 'OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS',"
            " 'MPLBACKEND')), home.startswith('/tmp/xqw-student-'), os.getcwd() == home,"
            " 'XQW_WAIT_FOR_JOB' in env")
        self.assertEqual(output, "([('LANG', 'C.UTF-8'), ('MPLBACKEND', 'Agg'), ('OMP_NUM_THREADS', '1'), "
                                 "('OPENBLAS_NUM_THREADS', '1'), ('TMPDIR', '/tmp')], True, True, False)\n")

    def test_student_runs_at_the_lowest_cpu_priority(self):
        # A submission's processes must not starve the supervisor of the container's CPU quota.
        output = self.probe("import os\nreturn os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, os.getppid())")
        self.assertEqual(output, "(19, 0)\n")

    def test_student_sees_grader_files_but_not_the_answer(self):
        output = self.probe(
            "import os, sys\n"
            "here = os.path.dirname(sys.modules['grader'].__file__)\n"
            "found = sorted(os.path.relpath(os.path.join(p, n), here)\n"
            "               for p, d, f in os.walk(here) for n in f)\n"
            "return found, 'answer' in sys.modules, os.access(here, os.W_OK)")
        self.assertEqual(output, "(['data/table.txt', 'grader.py'], False, False)\n")

    def test_private_mounts_are_closed(self):
        output = self.probe(
            "out = []\n"
            "for path in ('/xqw/private', '/xqw/private/grader/answer.py', '/xqw/private/job/job.json'):\n"
            "    try:\n"
            "        open(path).read()\n"
            "    except OSError as error:\n"
            "        out.append(type(error).__name__)\n"
            "return out")
        self.assertEqual(output, "['PermissionError', 'PermissionError', 'PermissionError']\n")

    def test_stdout_and_stderr_of_the_student_are_not_the_containers(self):
        run = self.grade(
            "import os\n"
            "def probe():\n"
            "    os.write(1, b'{\"correct\": true}\\n')\n"
            "    os.write(2, b'student stderr\\n')\n"
            "    return [os.readlink('/proc/self/fd/%d' % fd) for fd in (0, 1, 2)]\n")
        self.assertEqual(run.outputs[0], "['/dev/null', '/dev/null', '/dev/null']\n")
        self.assertNotIn("student stderr", run.stderr)

    def test_no_student_process_survives(self):
        self.probe(
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            "return 'forked'")
        self.assertEqual(_processes.processes_of(_contract.STUDENT_UID), [])


class KillAllOfTest(unittest.TestCase):
    """The supervisor kills every student process by switching uids for one kill(-1): students only."""

    def sleeper(self, uid):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                time.sleep(60)
            finally:
                os._exit(0)
        self.addCleanup(self.reap, uid, pid)
        return pid

    @staticmethod
    def reap(uid, pid):
        _processes.kill_all_of(uid, _contract.REAPER_UID)  # root here has no CAP_KILL either
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def test_kills_the_students_processes_and_nothing_else_then_is_root_again(self):
        student, staff = self.sleeper(_contract.STUDENT_UID), self.sleeper(_contract.STAFF_UID)
        end = time.monotonic() + 30
        while not (_processes.processes_of(_contract.STUDENT_UID) and _processes.processes_of(_contract.STAFF_UID)):
            self.assertLess(time.monotonic(), end, "the sleepers never switched uids")
            time.sleep(0.01)
        self.assertTrue(_processes.kill_all_of(_contract.STUDENT_UID, _contract.REAPER_UID))
        self.assertEqual(os.getresuid(), (0, 0, 0))
        self.assertEqual(os.waitpid(student, 0)[1], signal.SIGKILL)
        self.assertEqual(os.waitpid(staff, os.WNOHANG), (0, 0), "a staff process was killed")


class WaitForExitTest(unittest.TestCase):
    """After the kill, the supervisor waits for the student processes to be gone, not a fixed sleep."""

    def child(self, seconds):
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        self.addCleanup(self.reap, pid)
        return pid

    @staticmethod
    def reap(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def test_returns_as_soon_as_every_process_is_gone(self):
        pids = [self.child(0.05), self.child(0.1)]
        started = time.monotonic()
        _processes.wait_for_exit(pids, 20)
        self.assertLess(time.monotonic() - started, 10, "waited for the timeout, not the exits")
        for pid in pids:
            self.assertEqual(os.waitpid(pid, os.WNOHANG)[0], pid, "returned before the process ended")

    def test_gives_up_after_the_timeout_while_one_still_runs(self):
        pids = [self.child(0.0), self.child(60)]
        started = time.monotonic()
        _processes.wait_for_exit(pids, 0.2)
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.assertEqual(os.waitpid(pids[1], os.WNOHANG), (0, 0))

    def test_a_process_already_gone_is_not_waited_for(self):
        pid = self.child(0.0)
        os.waitpid(pid, 0)
        started = time.monotonic()
        _processes.wait_for_exit([pid], 20)
        self.assertLess(time.monotonic() - started, 10)


# The answer's secret line: its prefix is public (the probe searches for it), the rest only in answer.py.
SECRET_PREFIX = "xqw-answer-secret:"
SECRET = SECRET_PREFIX + "b7c1e04f9a2d63e8"


class ForkServerTest(SupervisorTestCase):
    """The runs are forked from the supervisor (one interpreter start per container), before it read
    anything of the job or the course: nothing of answer.py is in the student run's memory."""

    files = problem(grader="""\
        from grader_support import gradelib
        grader = gradelib.Grader()
        grader.add_test(gradelib.Test(lambda module: print(module.probe()), "probe",
                                      compare=lambda expected, actual: True))
        """, answer="# %s\ndef probe():\n    return 'answer'\n" % SECRET)

    # Scans every readable mapping of its own process for the secret line's prefix and reports the
    # hashes of the 16 characters after each hit (its own copies of the prefix are followed by a quote).
    MEMORY_SCAN = (
        "import ctypes, hashlib, re\n"
        "prefix = ('xqw-answer' + '-secret:').encode()\n"
        "found = set()\n"
        "for line in open('/proc/self/maps'):\n"
        "    fields = line.split()\n"
        "    if fields[1][0] != 'r' or (len(fields) > 5 and fields[5] in ('[vvar]', '[vsyscall]', '[vvar_vclock]')):\n"
        "        continue\n"
        "    start, end = (int(x, 16) for x in fields[0].split('-'))\n"
        "    data = ctypes.string_at(start, end - start)\n"
        "    for hit in re.finditer(re.escape(prefix), data):\n"
        "        found.add(hashlib.sha256(data[hit.end():hit.end() + 16]).hexdigest())\n"
        "return sorted(found)")

    def test_runs_are_forked_from_the_supervisor_not_new_interpreters(self):
        run = self.grade("import os, sys\ndef probe():\n"
                         "    return open('/proc/self/cmdline').read().split(chr(0))[3], sys.argv, "
                         "os.getppid() == 1 or os.getppid()\n")
        command, argv, _ = eval(run.outputs[0])
        self.assertEqual((command, argv), (SUPERVISOR, ["-c"]), run.outputs[0])

    def test_the_student_run_holds_nothing_of_the_answer(self):
        run = self.grade("def probe():\n" + "".join("    %s\n" % line for line in self.MEMORY_SCAN.splitlines()))
        secret_hash = hashlib.sha256(SECRET[len(SECRET_PREFIX):].encode()).hexdigest()
        hashes = eval(run.outputs[0])
        self.assertIsInstance(hashes, list, run.outputs[0])
        self.assertNotIn(secret_hash, hashes)

    def test_the_scan_finds_the_secret_where_it_is(self):
        # The same scan in the answer run, which holds answer.py: proves the probe would see a leak.
        scan = "def probe():\n" + "".join("    %s\n" % line for line in self.MEMORY_SCAN.splitlines())
        answer = "# %s\n%s" % (SECRET, scan)
        workspace = Workspace(problem(grader=self.files["grader.py"], answer=answer))
        try:
            run = workspace.grade("def probe():\n    return []\n")
        finally:
            workspace.close()
        self.assertEqual(run.returncode, 0, run.describe())
        secret_hash = hashlib.sha256(SECRET[len(SECRET_PREFIX):].encode()).hexdigest()
        self.assertIn(secret_hash, eval(run.result["tests"][0][3]), run.describe())


class AbnormalEndTest(SupervisorTestCase):
    files = IsolationTest.files

    def error_of(self, body, **job):
        run = self.grade("def probe():\n" + "".join("    %s\n" % line for line in body.splitlines()), **job)
        self.assertEqual((run.result["correct"], run.result["score"], run.result["tests"]), (False, 0.0, []))
        self.assertEqual(len(run.result["errors"]), 1, run.result)
        return run.result["errors"][0], run

    def test_os_exit(self):
        error, _ = self.error_of("import os\nos._exit(0)")
        self.assertIn("ended the grading process before the tests finished (exit status 0)", error)

    def test_crash(self):
        error, _ = self.error_of("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
        self.assertEqual(error, "Your code crashed the Python interpreter (signal 11).")

    def test_killed(self):
        error, _ = self.error_of("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        self.assertIn("too much memory", error)

    def test_timeout_comes_back_before_the_deadline(self):
        deadline = 3  # job.json timeout_seconds: the watcher kills the container this long after its start
        error, run = self.error_of("while True:\n    pass", timeout_seconds=deadline)
        self.assertEqual(error, "Your code took too long to run: it was stopped after 3 seconds.")
        self.assertLess(run.seconds, deadline, "the supervisor must exit with its result before the watcher's "
                        "deadline: " + run.describe())

    def test_huge_output_is_bounded(self):
        run = self.grade("def probe():\n    for _ in range(200000):\n"
                         "        print('y' * 100)\n    return 0\n")
        self.assertEqual(len(run.outputs[0]), 5000 + len("...OUTPUT TRUNCATED"))

    def test_corrupted_report(self):
        error, _ = self.error_of("import grader_support._wire as w\n"
                                 "w._dumps = lambda *a, **k: '[1, 2'\n"
                                 "return 1")
        self.assertEqual(error, "Your code interfered with the grading process, so it could not be graded.")


class LargeSubmissionTest(SupervisorTestCase):
    files = problem(grader="""\
        import hashlib
        from grader_support import gradelib
        grader = gradelib.Grader()
        grader.add_preprocessor(gradelib.wrap_in_string)
        def digest(module):
            print(len(module.submission_code), hashlib.sha256(module.submission_code.encode()).hexdigest())
        grader.add_test(gradelib.Test(digest, "digest", compare=lambda expected, actual: True))
        """, answer="x = 1\n")

    def test_multi_megabyte_submission_arrives_intact(self):
        body = "".join("# line %d: \u00e9\u20ac\U0001F600 '\"\\ \n" % i for i in range(180000))
        self.assertGreater(len(body.encode()), 5 << 20)
        run = self.grade(body)
        self.assertEqual(run.outputs[0], "%d %s\n" % (len(body), hashlib.sha256(body.encode()).hexdigest()))


class JobErrorTest(unittest.TestCase):
    def setUp(self):
        self.workspace = Workspace(problem())

    def tearDown(self):
        self.workspace.close()

    def test_unusable_jobs_exit_2_with_a_reason(self):
        cases = [({"grader": "../grader.py"}, "relative file name"),
                 ({"grader": "/etc/passwd"}, "relative file name"),
                 ({"seed": "abc"}, "seed"),
                 ({"timeout_seconds": -1}, "timeout_seconds")]
        for job, reason in cases:
            with self.subTest(job=job):
                run = self.workspace.grade("x = 1\n", **job)
                self.assertEqual(run.returncode, 2, run.describe())
                self.assertEqual(run.stdout, b"")
                self.assertIn(reason, run.stderr)

    def test_missing_job_directory(self):
        run = run_supervisor(self.workspace.problem, "/nonexistent")
        self.assertEqual(run.returncode, 2)
        self.assertIn("reading the job", run.stderr)

    def test_refuses_to_run_without_root(self):
        self.workspace.grade("x = 1\n")  # writes the job
        completed = subprocess.run(
            [sys.executable, "-I", "-B", "-c",
             "import os, sys; os.setgroups([]); os.setresuid(10001, 10001, 10001); "
             "os.execv(sys.executable, [sys.executable, '-I', '-B', %r, '--grader-dir', %r, '--job-dir', %r])"
             % (SUPERVISOR, self.workspace.problem, self.workspace.job)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(completed.returncode, 2, completed.stderr)
        self.assertIn("must run as user 0:0", completed.stderr)


def open_files(pid):
    """What `pid`'s descriptors point at now (descriptors closed while looking are skipped)."""
    found = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            found.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
    return found


def cpu_ticks(pid):
    """utime + stime of `pid` in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class WaitForJobTest(SupervisorTestCase):
    """XQW_WAIT_FOR_JOB: the container is started before its job; the watcher delivers it by writing the
    job directory, then a byte into its FIFO or, where nobody reads the FIFO, SIGWINCH."""

    @staticmethod
    def processes_left(uid, seconds=10):
        """The processes of `uid` still alive after waiting up to `seconds` for them to end."""
        end = time.monotonic() + seconds
        while _processes.processes_of(uid) and time.monotonic() < end:
            time.sleep(0.05)
        return _processes.processes_of(uid)

    def wait_until(self, process, condition, failure):
        """Until `condition()` holds, while the waiting supervisor `process` runs; fails after 30 s."""
        end = time.monotonic() + 30
        while not condition():
            self.assertIsNone(process.poll(), "the supervisor ended while waiting for its job")
            self.assertLess(time.monotonic(), end, failure)
            time.sleep(0.02)

    def wait_for_processes(self, uid, count, process):
        self.wait_until(process, lambda: len(_processes.processes_of(uid)) >= count,
                        "the interpreters were not started before the job")

    def test_interpreters_wait_for_the_job_and_grade_it_on_the_signal(self):
        process = self.workspace.start_waiting(60)
        try:
            # Both staff interpreters and the student one run before any job exists.
            self.wait_for_processes(_contract.STAFF_UID, 2, process)
            self.wait_for_processes(_contract.STUDENT_UID, 1, process)
            time.sleep(0.2)
            self.assertIsNone(process.poll())
            self.workspace.write_job("import os\ndef add(a, b):\n"
                                     "    return a + b if 'XQW_WAIT_FOR_JOB' not in os.environ else 0\n")
            process.send_signal(signal.SIGWINCH)
            run = finished(process)
        finally:
            process.kill()
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual((run.result["correct"], run.outputs), (True, ["5\n", "0\n"]), run.describe())
        self.assertEqual(_processes.processes_of(_contract.STUDENT_UID), [])

    def test_a_signal_before_the_supervisor_listens_neither_kills_it_nor_is_lost(self):
        self.workspace.write_job("def add(a, b):\n    return a + b\n")
        process = self.workspace.start_waiting(60)
        try:
            process.send_signal(signal.SIGWINCH)  # the interpreter has not even started
            run = finished(process)
        finally:
            process.kill()
        self.assertEqual((run.returncode, run.result and run.result["correct"]), (0, True), run.describe())

    def start_waiting_on_fifo(self):
        """A supervisor waiting for its job, once it holds the job directory's FIFO open."""
        self.workspace.make_fifo()
        process = self.workspace.start_waiting(60)
        fifo = os.path.join(self.workspace.job, _contract.JOB_READY_FIFO)
        try:
            self.wait_until(process, lambda: fifo in open_files(process.pid),
                            "the supervisor never opened the job directory's FIFO")
        except BaseException:
            process.kill()
            raise
        return process

    def test_a_byte_in_the_fifo_delivers_the_job_without_a_signal(self):
        process = self.start_waiting_on_fifo()
        try:
            self.workspace.write_job("def add(a, b):\n    return a * b\n")
            self.assertTrue(self.workspace.wake())
            run = finished(process, timeout=30)
        finally:
            process.kill()
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual((run.result["score"], run.outputs), (0.0, ["6\n", "-1\n"]), run.describe())

    def test_no_wake_up_no_grading(self):
        # Nothing polls: a job written without a wake-up waits for it. (A window cannot prove "never";
        # 1.5 s is longer than the former once-a-second look.)
        process = self.start_waiting_on_fifo()
        try:
            self.workspace.write_job("def add(a, b):\n    return a + b\n")
            time.sleep(1.5)
            self.assertIsNone(process.poll(), "graded without a wake-up")
            self.assertTrue(self.workspace.wake())
            run = finished(process, timeout=30)
        finally:
            process.kill()
        self.assertEqual((run.returncode, run.result and run.result["correct"]), (0, True), run.describe())

    def test_an_empty_wake_up_does_not_end_the_wait(self):
        # A writer that opens and closes the FIFO without a byte (end of file): the supervisor keeps
        # waiting without spinning on it, and the signal still delivers the job.
        process = self.start_waiting_on_fifo()
        try:
            os.close(os.open(os.path.join(self.workspace.job, _contract.JOB_READY_FIFO), os.O_WRONLY))
            before = cpu_ticks(process.pid)
            time.sleep(1.0)
            self.assertLess(cpu_ticks(process.pid) - before, os.sysconf("SC_CLK_TCK") // 2,
                            "the supervisor spins on the FIFO's end of file")
            self.assertIsNone(process.poll(), "an empty wake-up ended the wait")
            self.workspace.write_job("def add(a, b):\n    return a + b\n")
            process.send_signal(signal.SIGWINCH)
            run = finished(process, timeout=30)
        finally:
            process.kill()
        self.assertEqual((run.returncode, run.result and run.result["correct"]), (0, True), run.describe())

    def test_a_job_already_there_is_graded_at_once(self):
        self.workspace.write_job("def add(a, b):\n    return a + b\n")
        run = finished(self.workspace.start_waiting(60))
        self.assertEqual((run.returncode, run.result and run.result["correct"]), (0, True), run.describe())

    def test_no_job_in_the_waiting_time_exits_3_without_output(self):
        started = time.monotonic()
        run = finished(self.workspace.start_waiting(0.5))
        self.assertEqual(run.returncode, 3, run.describe())
        self.assertEqual(run.stdout, b"")
        self.assertIn("no job arrived within 0.5s", run.stderr)
        self.assertLess(time.monotonic() - started, 30)
        # With its request pipe closed the student process ends by itself (in production the container
        # ends too).
        self.assertEqual(self.processes_left(_contract.STUDENT_UID), [])

    def test_the_deadline_counts_from_the_job_not_from_the_start(self):
        process = self.workspace.start_waiting(60)
        try:
            self.wait_for_processes(_contract.STUDENT_UID, 1, process)
            time.sleep(2.5)  # longer than the job's whole time limit below
            self.workspace.write_job("def add(a, b):\n    return a + b\n", timeout_seconds=2)
            process.send_signal(signal.SIGWINCH)
            run = finished(process)
        finally:
            process.kill()
        self.assertEqual((run.returncode, run.result and run.result["correct"]), (0, True), run.describe())

    def test_a_bad_waiting_time_is_refused(self):
        for value in ("abc", "0", "-3"):
            with self.subTest(value=value):
                run = run_supervisor(self.workspace.problem, self.workspace.job,
                                     env=dict(os.environ, XQW_WAIT_FOR_JOB=value))
                self.assertEqual(run.returncode, 2, run.describe())
                self.assertIn("XQW_WAIT_FOR_JOB must be a positive number of seconds", run.stderr)



class RefusedForksTest(unittest.TestCase):
    """The pids cgroup's count of refused forks, which the usage line carries to the watcher."""

    def test_reads_the_max_count_from_the_first_readable_file(self):
        with tempfile.TemporaryDirectory() as directory:
            events = os.path.join(directory, "pids.events")
            with open(events, "w") as out:
                out.write("max 17\n")
            missing = os.path.join(directory, "absent")
            self.assertEqual(_supervisor.refused_forks((missing, events)), 17)

    def test_unknown_when_no_file_can_be_read(self):
        self.assertIsNone(_supervisor.refused_forks(("/nonexistent/pids.events",)))

    def test_this_container_has_a_pids_cgroup_to_read(self):
        # run-tests runs in the image like a grading container: the count must be there to be reported.
        self.assertIsInstance(_supervisor.refused_forks(), int)


if __name__ == "__main__":
    unittest.main()
