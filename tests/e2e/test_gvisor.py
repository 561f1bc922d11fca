"""Grading inside gVisor (runsc), per queue: `limits: {runtime: runsc}`.

scripts/engine registers runsc with the engine it starts (`--platform=ptrace --network=none
--ignore-cgroups`). On this host cgroups are hybrid, hence --ignore-cgroups: the engine's memory,
CPU and pids cgroup limits do not apply inside gVisor. The watcher's own deadline and output caps
still do, and for such runtimes it also sets RLIMIT_NPROC to the pids limit, which gVisor's kernel
counts per sandbox. These tests grade the demo course under runsc, prove the kernel is gVisor's
from inside a submission, and run the hostile cases that hold there. Memory hogs are not run under
runsc: nothing would stop them short of the host's memory.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BINARY, DEMO_COURSE, GRADER_IMAGE, SOURCE_DIR, engine_request, write_config_root
import test_hostile
from test_hostile import (ATTACKS, BADGRADER_IMAGE, PYTHON_LIMITS, SUBMISSIONS, Case, HostileRun, build_badgrader,
                          case_table, fixed, fixture, make_case_tests)

RUNTIME = "runsc"
FIXTURES_IN_ROOT = "tests/e2e/fixtures/"  # grader_root is the source tree: the demo course and the fixtures
PROBE = FIXTURES_IN_ROOT + test_hostile.PROBE
SECRET = FIXTURES_IN_ROOT + test_hostile.SECRET
SQUARE = FIXTURES_IN_ROOT + test_hostile.SQUARE
CONTRACT = FIXTURES_IN_ROOT + test_hostile.CONTRACT
DEMO_IN_ROOT = os.path.relpath(DEMO_COURSE, SOURCE_DIR)

UNKNOWN_RUNTIME = "no-such-runtime"
GVISOR_LIMITS = dict(PYTHON_LIMITS, timeout="8s", runtime=RUNTIME)
# 16 processes, not 64: under gVisor's ptrace platform each fork and exec is slow enough that reaching 64
# took about the whole 5 s deadline on a busy machine (timeout instead of pids_limit, seen once).
GVISOR_CONTRACT_LIMITS = dict(test_hostile.CONTRACT_LIMITS, runtime=RUNTIME, pids=16)


def host_kernel():
    with open("/proc/version") as handle:
        return handle.read().strip()


GVISOR_CASES = (
    Case("the kernel a submission sees", "gvisor", PROBE, fixture(SUBMISSIONS, "kernel_probe.py"),
         "graded", "Starting gVisor...", "/proc/version is gVisor's, not the host's; dmesg is gVisor's log",
         never=(host_kernel(),)),
    Case("the same probe under runc (control)", "runc", PROBE, fixture(SUBMISSIONS, "kernel_probe.py"),
         "graded", "dmesg=dmesg: read kernel buffer failed: Operation not permitted",
         "the host's /proc/version, no kernel log", also=(host_kernel(),)),
    Case("infinite loop", "gvisor", SECRET, fixture(ATTACKS, "endless_loop.py"),
         "graded", "Your code took too long to run: it was stopped after 8 seconds.",
         "score 0; the image's deadline, inside the watcher's"),
    Case("`while True: os.fork()`", "gvisor", PROBE, fixture(SUBMISSIONS, "fork_forever.py"),
         "graded", "BlockingIOError: [Errno 11] Resource temporarily unavailable",
         "score 0; RLIMIT_NPROC (the pids limit) inside the sandbox stops it"),
    Case("opening a TCP connection", "gvisor", PROBE, fixture(SUBMISSIONS, "open_tcp.py"),
         "graded", "192.0.2.1:80 No route to host", "score 0; no network in the sandbox",
         never=("connected", "dns resolved")),
    Case("grader never ends", "gvisor-contract", CONTRACT, fixed("sleep"),
         "timeout", "Your code did not finish within 5 s.", "score 0; the watcher kills the sandbox at its deadline"),
    Case("grader fork bomb", "gvisor-contract", CONTRACT, fixed("fork-bomb"),
         "pids_limit", "Your code started too many processes (limit: 16).", "score 0; RLIMIT_NPROC"),
    Case("grader prints 2 GB to stdout", "gvisor-contract", CONTRACT, fixed("stdout-flood"),
         "output_too_large", "Your code printed more than 1 MiB.", "score 0; the watcher's stdout cap",
         limit="stdout"),
    Case("grader floods stderr", "gvisor-contract", CONTRACT, fixed("stderr-flood"),
         "output_too_large", "Your code printed more than 64 KiB.", "score 0; the watcher's stderr cap",
         limit="stderr"),
    Case("a runtime the engine does not have", "unknown-runtime", SQUARE, fixed(test_hostile.SQUARE_RIGHT),
         None, UNKNOWN_RUNTIME, "not pulled, nothing posted; `check-config` reports it as an error when the "
         "engine answers, and the watcher's log names it"),
)


def demo_cases():
    with open(os.path.join(DEMO_COURSE, "expected.json")) as handle:
        expected = json.load(handle)
    cases = []
    for sample, score in sorted(expected.items()):
        problem = sample.split("/")[0]
        cases.append(Case("demo " + sample, "gvisor", "%s/%s/grader.py" % (DEMO_IN_ROOT, problem),
                          fixture(DEMO_COURSE, sample), "graded", "Test results", "expected score", score=score))
    return tuple(cases)


DEMO_CASES = demo_cases()

QUEUES = {
    "gvisor": {"grader_root": SOURCE_DIR, "connections": 2, "image": GRADER_IMAGE, "limits": GVISOR_LIMITS},
    "gvisor-contract": {"grader_root": SOURCE_DIR, "connections": 1, "image": BADGRADER_IMAGE,
                        "pull_policy": "never", "limits": GVISOR_CONTRACT_LIMITS},
    "runc": {"grader_root": SOURCE_DIR, "connections": 1, "image": GRADER_IMAGE, "limits": PYTHON_LIMITS},
    "unknown-runtime": {"grader_root": SOURCE_DIR, "connections": 1, "image": GRADER_IMAGE,
                        "limits": dict(PYTHON_LIMITS, runtime=UNKNOWN_RUNTIME)},
}


def gvisor_table():
    demo = "| the %d demo-course samples | Python image, %s | `graded` | their expected scores | as under runc |\n" % (
        len(DEMO_CASES), RUNTIME)
    return case_table(GVISOR_CASES, QUEUES) + demo


def runsc_registered():
    status, body = engine_request("GET", "/info")
    return status == 200 and RUNTIME in json.loads(body).get("Runtimes", {})


class GvisorGradingTest(HostileRun):
    QUEUES = QUEUES
    CASES_HERE = GVISOR_CASES + DEMO_CASES
    FOLLOW_UPS = {"gvisor": (SQUARE, test_hostile.SQUARE_RIGHT, 1.0), "gvisor-contract": (CONTRACT, "ok", 1.0)}

    @classmethod
    def prepare_images(cls):
        if not runsc_registered():
            raise AssertionError("the Docker engine has no '%s' runtime: it was started before scripts/engine "
                                 "registered gVisor (restart it with scripts/engine), or runsc is not installed"
                                 % RUNTIME)
        build_badgrader()

    def test_grades_and_leaves_nothing_behind(self):
        self.check_watcher_health()

    def test_unknown_runtime_is_never_pulled(self):
        sid = self.case_ids["a runtime the engine does not have"]
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 0,
                         "a queue whose runtime is missing must not pull submissions it cannot grade")

    def test_jobs_reach_gvisor_containers_by_the_job_signal(self):
        # A host FIFO cannot reach into gVisor's sandbox (opening it there fails), so nobody reads the job
        # directory's FIFO and the watcher sends the job signal every time. (Under runc the FIFO wakes the
        # container: tests/integration/container_grader_test.cpp.)
        deliveries = set(re.findall(r"graded submission \d+ in queue gvisor:.* job_delivery=(\w+)", self.log))
        self.assertEqual(deliveries, {"signal"}, self.log[-3000:])


for _name, _method in make_case_tests(GVISOR_CASES + DEMO_CASES).items():
    setattr(GvisorGradingTest, _name, _method)


class CheckConfigRuntimeTest(unittest.TestCase):
    """`check-config` asks the engine for its runtimes when a queue names one."""

    def check_config(self, runtime, manager_extra=""):
        root = tempfile.mkdtemp(prefix="xqw-runtime-")
        self.addCleanup(shutil.rmtree, root, True)
        write_config_root(root, 1, {"q": {"grader_root": SOURCE_DIR, "limits": {"runtime": runtime}}},
                          manager_extra=manager_extra)
        return subprocess.run([BINARY, "check-config", "-d", root], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, XQW_TEST_PASSWORD="pw"))

    def test_unknown_runtime_is_an_error_when_the_engine_answers(self):
        checked = self.check_config(UNKNOWN_RUNTIME)
        self.assertEqual(checked.returncode, 1, checked.stdout + checked.stderr)
        self.assertIn("queues.q.limits.runtime: runtime '%s' is not registered with the Docker engine"
                      % UNKNOWN_RUNTIME, checked.stdout)
        self.assertIn(RUNTIME, checked.stdout, "the error lists the runtimes the engine offers")

    def test_registered_runtime_passes(self):
        checked = self.check_config(RUNTIME)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("configuration OK", checked.stdout)

    def test_silent_engine_leaves_runtimes_unchecked_with_a_warning(self):
        checked = self.check_config(UNKNOWN_RUNTIME, manager_extra="docker_socket: /nonexistent/docker.sock\n")
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("warning: /nonexistent/docker.sock: runtimes not checked: the Docker engine does not answer",
                      checked.stdout)


if __name__ == "__main__":
    unittest.main()
