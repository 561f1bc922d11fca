"""Hostile submissions through the real watcher, the XQueue stand-in and the Docker engine.

Every case is one row of CASES: what is submitted, the verdict the watcher must log for it
(`verdict <label>`, src/grading/verdict.hpp), the text the student must see in the posted HTML,
and what must never appear there. One watcher serves every case of a class; all cases are
submitted at once and graded over several connections. Afterwards each class checks that the
watcher still grades a normal submission right, that no container carrying its label and no job
directory is left, and that its peak resident memory (VmHWM) stayed under MEMORY_BOUND_MIB (and
BIG_SUBMISSION_MEMORY_BOUND_MIB once the 5 MB submission was read).

docs/reliability.md carries the table of these cases; ReliabilityDocTest fails when it differs
from CASES (scripts/reliability-report rewrites it).
"""
import dataclasses
import html
import json
import os
import re
import subprocess
import time
import unittest
from typing import Callable, Optional, Sequence, Tuple

from harness import (GRADER_IMAGE, HERE, SOURCE_DIR, WatcherTestCase, containers_labelled,
                     engine_request, used_containers)

FIXTURES = os.path.join(HERE, "fixtures")  # every queue's grader_root
HOSTILE = os.path.join(FIXTURES, "hostile")
SUBMISSIONS = os.path.join(HOSTILE, "submissions")
ATTACKS = os.path.join(FIXTURES, "python_image", "attacks")
BADGRADER_DIR = os.path.join(HOSTILE, "badgrader")
BADGRADER_IMAGE = "xqueue-watcher/test-badgrader:latest"
MISSING_IMAGE = "xqueue-watcher/test-missing-image:does-not-exist"
VANISHING_IMAGE = "xqueue-watcher/test-vanishing:latest"  # our own tag, removed while the watcher runs
DOC_PATH = os.path.join(SOURCE_DIR, "docs", "reliability.md")

# The watcher's peak resident set (VmHWM). Idle it is ~15 MiB. Whatever the containers print or
# allocate (cases print 2 GiB and allocate 10 GiB) it holds at most stdout + stderr cap per running
# job, so every case but the big submission must leave it under MEMORY_BOUND_MIB. A submission is
# downloaded and decoded whole before its size is checked (several copies of it for a moment), so
# the 5 MB one ("late", submitted last) gets its own, larger bound.
MEMORY_BOUND_MIB = 32
BIG_SUBMISSION_MEMORY_BOUND_MIB = 80

PROBE = "hostile/course/probe/grader.py"
SECRET = "python_image/secret/grader.py"
SQUARE = "course/square/grader.py"
CONTRACT = "hostile/badgrader/badgrader.py"  # any file under grader_root: the bad image ignores it
SQUARE_RIGHT = "def square(x):\n    return x * x\n"

# Small limits keep the suite fast; the student messages quote them. 32 processes of the fork bomb stay
# well inside 128 MiB (with 64, their copied pages sometimes reached it first: out_of_memory instead).
PYTHON_LIMITS = {"timeout": "8s", "memory": "128Mi", "stdout": "64Ki", "stderr": "64Ki", "pids": 32,
                 "tmpfs": "16Mi", "submission": "1Mi", "cpus": "0.5"}
CONTRACT_LIMITS = {"timeout": "5s", "memory": "128Mi", "stdout": "1Mi", "stderr": "64Ki", "pids": 64,
                   "cpus": "0.5"}


def read_text(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return handle.read()


def other_problem_reader():
    """The submission that reads another problem's answer.py by its real host path, and more."""
    host_path = os.path.join(FIXTURES, "python_image", "secret", "answer.py")
    return read_text(SUBMISSIONS, "read_other_answer.py").replace("{host_path}", host_path)


def lone_surrogate_body():
    """What a Python LMS sends for text that was not UTF-8 (surrogate escapes): invalid JSON text
    for every strict decoder."""
    return json.dumps({"grader_payload": json.dumps({"grader": PROBE}),
                       "student_info": json.dumps({"anonymous_student_id": "s", "random_seed": 1}),
                       "student_response": "def probe():\n    return 'caf\udce9'\n"})


@dataclasses.dataclass(frozen=True)
class Case:
    name: str                 # the row in docs/reliability.md
    queue: str                # key of QUEUES
    grader: Optional[str]     # grader path in the payload (None: `payload` or `xqueue_body` instead)
    submission: Callable[[], str]
    verdict: Optional[str]    # the logged verdict; None: nothing may be posted (infrastructure)
    shows: str                # text the student sees (in the unescaped HTML); for None: the log
    outcome: str              # what else happens, for the report
    payload: object = None    # raw grader_payload (a string is sent as is)
    xqueue_body: Optional[Callable[[], str]] = None
    score: float = 0.0
    never: Tuple[str, ...] = ()  # text that must not appear in what the student's code produced
    also: Tuple[str, ...] = ()   # more text that must appear
    late: bool = False           # submitted after the others, to measure its memory apart
    limit: str = ""              # the limit (or exit code) a TOLD message quotes when the verdict has several


def fixed(text):
    return lambda: text


def fixture(*parts):
    return lambda: read_text(*parts)


SECRET_TOKEN = "SECRET-7f3a9c1e"
STAFF_PROBE = "PROBE-STAFF-c41d"
PIDS_MESSAGE_OVERRIDE = "Too many processes at once: this exercise allows {limit}."
GRADER_NOT_FOUND = ("There was a problem running your code (Staff debug: grader not found). "
                    "Please contact the course staff.")

# What the student must be told for each verdict the watcher decides itself: written here by hand from
# the rules of docs/reliability.md ("Every run ends in a verdict"), not taken from the code, so a changed
# outcome is a decision made here and in the doc. {limit} is the queue's limit in words; the second item
# names that limit (None: the message has no limit; "case": the case's own `limit`, e.g. an exit code).
TOLD = {
    "submission_too_large": ("Your submission is larger than the {limit} this problem accepts.", "submission"),
    "grader_not_found": ("There was a problem running your code (Staff debug: grader not found). "
                         "Please contact the course staff.", None),
    "timeout": ("Your code did not finish within {limit}.", "timeout"),
    "out_of_memory": ("Your code used more than {limit} of memory.", "memory"),
    "pids_limit": ("Your code started too many processes (limit: {limit}).", "pids"),
    "output_too_large": ("Your code printed more than {limit}.", "case"),
    "grader_error": ("There was a problem running your code (Staff debug: exit code {limit}).", "case"),
    "invalid_output": ("There was a problem running your code (Staff debug: invalid grader output).", None),
}
UNITS = {"Ki": "KiB", "Mi": "MiB", "Gi": "GiB"}


def limit_in_words(name, value):
    """A limit as the student reads it: "8s" -> "8 s", "64Ki" -> "64 KiB", 32 -> "32"."""
    text = str(value)
    if name == "timeout":
        return re.fullmatch(r"(\d+)s", text).group(1) + " s"
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", text)
    return "%s %s" % (match.group(1), UNITS[match.group(2)]) if match else text


def told(verdict, limits, messages=None, case_limit=""):
    """The message a verdict must give under a queue's limits and message overrides; None for verdicts
    whose text is the grader's own (graded) or that post nothing."""
    if verdict not in TOLD:
        return None
    template, limit = TOLD[verdict]
    template = (messages or {}).get(verdict, template)
    if limit is None:
        return template
    if limit == "case":
        value = limits.get(case_limit, case_limit)
        return template.replace("{limit}", limit_in_words(case_limit, value))
    return template.replace("{limit}", limit_in_words(limit, limits[limit]))

CASES: Sequence[Case] = (
    # --- the student's code misbehaves (Python grader image) ----------------------------------
    Case("infinite loop", "python", SECRET, fixture(ATTACKS, "endless_loop.py"),
         "graded", "Your code took too long to run: it was stopped after 8 seconds.",
         "score 0; the image stops the student run before the watcher's deadline"),
    Case("`while True: os.fork()`", "python", PROBE, fixture(SUBMISSIONS, "fork_forever.py"),
         "pids_limit", "Your code started too many processes (limit: 32).",
         "score 0; the pids limit (32) makes fork fail before memory runs out; the image reports the "
         "refused forks; every student process is killed"),
    Case("fork bomb that ignores every failed fork", "python", PROBE, fixture(SUBMISSIONS, "fork_swallow.py"),
         "pids_limit", "Your code started too many processes (limit: 32).",
         "score 0; nothing on stderr says why it stopped, but the pids cgroup counted the refused forks"),
    Case("allocating 10 GB", "python", PROBE, fixture(SUBMISSIONS, "allocate_10gb.py"),
         "out_of_memory", "Your code used more than 128 MiB of memory.",
         "score 0; the kernel kills the student run inside the memory limit; the engine reports OOM"),
    Case("printing 2 GB to stdout", "python", PROBE, fixture(SUBMISSIONS, "print_2gb.py"),
         "graded", "...OUTPUT TRUNCATED",
         "score 0; print() output is cut at 5000 characters, fd 1 of the student run is /dev/null"),
    Case("flooding stderr", "python", PROBE, fixture(SUBMISSIONS, "flood_stderr.py"),
         "graded", "'flooded stderr with 2 GiB'",
         "score 0; the student run's stderr is /dev/null, so the container's stderr stays small"),
    Case("filling /tmp", "python", PROBE, fixture(SUBMISSIONS, "fill_tmp.py"),
         "graded", "No space left on device",
         "score 0; /tmp is a 16 MiB tmpfs that goes with the container"),
    Case("opening a TCP connection", "python", PROBE, fixture(SUBMISSIONS, "open_tcp.py"),
         "graded", "192.0.2.1:80 Network is unreachable",
         "score 0; network mode none: only a loopback with nothing listening",
         never=("connected", "dns resolved"), also=("127.0.0.1:80 Connection refused",)),
    Case("writing to /grader, /job and the mounts", "python", PROBE, fixture(SUBMISSIONS, "write_mounts.py"),
         "graded", "/xqw/private/grader/x Permission denied",
         "score 0; read-only root, read-only mounts, /xqw/private is root-only",
         never=("written",), also=("/xqw/private/job/submission Permission denied", "/etc/x Read-only file system")),
    Case("reading another problem's answer.py by path", "python", PROBE, other_problem_reader,
         "graded", "No such file or directory",
         "score 0; only this problem's directory is mounted, and students cannot read it",
         never=(SECRET_TOKEN,)),
    Case("killing its own interpreter", "python", PROBE, fixture(SUBMISSIONS, "kill_own_interpreter.py"),
         "graded", "Your code was stopped before it finished",
         "score 0", never=("still alive",)),
    Case("invalid UTF-8 (a lone surrogate escape)", "python", None, fixed(""),
         "malformed", "reached the grader malformed",
         "score 0; the body is not valid JSON text, so nothing is run; answered once so XQueue "
         "does not serve it again", xqueue_body=lone_surrogate_body),
    Case("NUL bytes in the submission", "python", PROBE, fixed("def probe():\n    return 'a\x00b'\n"),
         "graded", "source code string cannot contain null bytes",
         "score 0; the bytes reach the grader as sent"),
    Case("a 5 MB submission", "python", PROBE, lambda: "# " + "x" * (5 << 20) + "\n",
         "submission_too_large", "Your submission is larger than the 1 MiB this problem accepts.",
         "score 0; refused before any container starts (limits.submission)", late=True),
    # --- grader_payload ---------------------------------------------------------------------
    Case("grader_payload is not JSON", "python", None, fixed(SQUARE_RIGHT),
         "malformed", "reached the grader malformed",
         "score 0; nothing is run; answered once so XQueue does not serve it again",
         payload="grader.py, please"),
    Case("grader_payload without `grader`", "python", None, fixed(SQUARE_RIGHT),
         "grader_not_found", GRADER_NOT_FOUND, "score 0; nothing is run", payload={"problem": "square"}),
    Case("grader path with `../`", "python", "../fixtures/course/square/grader.py", fixed(SQUARE_RIGHT),
         "grader_not_found", GRADER_NOT_FOUND, "score 0; nothing is run"),
    Case("absolute grader path", "python", os.path.join(SOURCE_DIR, "examples", "demo-course", "01-average",
                                                        "grader.py"),
         fixed(SQUARE_RIGHT), "grader_not_found", GRADER_NOT_FOUND,
         "score 0; nothing is run (a real grader, but outside grader_root)"),
    Case("symlink out of grader_root", "python", "hostile/escape/grader.py", fixed(SQUARE_RIGHT),
         "grader_not_found", GRADER_NOT_FOUND, "score 0; nothing is run"),
    # --- integrity: only the submission's own outputs count ---------------------------------
    Case("import the answer", "python", SECRET, fixture(ATTACKS, "import_answer.py"),
         "graded", "No module named 'answer'", "score 0", never=(SECRET_TOKEN,)),
    Case("read the answer by path", "python", SECRET, fixture(ATTACKS, "read_answer_paths.py"),
         "graded", "Permission denied: '/xqw/private/grader/answer.py'", "score 0", never=(SECRET_TOKEN,)),
    Case("search /tmp and /proc for the answer", "python", SECRET, fixture(ATTACKS, "search_tmp_and_proc.py"),
         "graded", "'nothing found'", "score 0", never=(SECRET_TOKEN,)),
    Case("patch the comparison and the JSON encoder", "python", SECRET, fixture(ATTACKS, "patch_grading.py"),
         "graded", "Your code interfered with the grading process, so it could not be graded.",
         "score 0; the patches change only the student's own process, whose report no longer parses",
         never=(SECRET_TOKEN,)),
    Case("forged result, then `os._exit(0)`", "python", SECRET, fixture(ATTACKS, "forged_json_then_exit.py"),
         "graded", "ended the grading process before the tests finished", "score 0",
         never=(SECRET_TOKEN,)),
    Case("writing the container's stdout", "python", SECRET, fixture(ATTACKS, "write_container_stdout.py"),
         "graded", "/proc/1/fd/1: [Errno 13] Permission denied", "score 0", never=(SECRET_TOKEN,)),
    Case("forged report frames on every fd", "python", SECRET, fixture(ATTACKS, "forge_report_frames.py"),
         "graded", "'guessed'", "score 0; a forged frame is only ever the student's own output, compared by staff",
         never=(SECRET_TOKEN,)),
    Case("a detached process printing after the grader", "python", SECRET,
         fixture(ATTACKS, "detached_printer.py"), "graded", "'not the token'",
         "score 0; the stray dies with the container", never=(SECRET_TOKEN,)),
    Case("replacing `sys.stdout`", "python", SECRET, fixture(ATTACKS, "replace_sys_stdout.py"),
         "graded", "INCORRECT", "score 0; its output is empty: what it printed went to /dev/null",
         never=(SECRET_TOKEN, '"score"')),
    Case("kill PID 1 and every process", "python", SECRET, fixture(ATTACKS, "kill_everything.py"),
         "graded", "'not the token'", "score 0", never=(SECRET_TOKEN,)),
    # --- the course's grader misbehaves ------------------------------------------------------
    Case("a grader that raises on import", "python", "hostile/course/raises_on_import/grader.py",
         fixed(SQUARE_RIGHT), "graded", "There was a problem running the staff solution (Staff debug: L364)",
         "score 0; the traceback goes to the log (staff debug), not to the student",
         never=("course author",)),
    # --- an image that breaks the container contract (xqueue-watcher/test-badgrader) --------
    Case("grader prints non-JSON", "contract", CONTRACT, fixed("non-json"),
         "invalid_output", "There was a problem running your code (Staff debug: invalid grader output).",
         "score 0", never=("Grading complete",)),
    Case("result JSON with wrong types", "contract", CONTRACT, fixed("wrong-types"),
         "invalid_output", "There was a problem running your code (Staff debug: invalid grader output).",
         "score 0"),
    Case("result with an enormous `msg` (900 KiB)", "contract", CONTRACT, fixed("huge-msg"),
         "graded", "enormous enormous", "the image's score (0.5); msg cut to 64 KiB, scripts removed",
         score=0.5, never=("<script",), also=("[output truncated]",)),
    Case("writing to /grader and /job (plain image)", "contract", CONTRACT, fixed("write-mounts"),
         "graded", "/grader/x: Read-only file system",
         "score 0; without a supervisor label the container runs as 65534:65534 with no capabilities",
         also=("/job/submission: Read-only file system", "/etc/x: Read-only file system", "/tmp/x: written")),
    Case("grader exits 3 without a result", "contract", CONTRACT, fixed("exit-3"),
         "grader_error", "There was a problem running your code (Staff debug: exit code 3).",
         "score 0; stderr goes to the log only", never=("KeyError",), limit="3"),
    Case("grader never ends", "contract", CONTRACT, fixed("sleep"),
         "timeout", "Your code did not finish within 5 s.",
         "score 0; the watcher kills the container at its deadline"),
    Case("grader allocates 10 GB", "contract", CONTRACT, fixed("memory"),
         "out_of_memory", "Your code used more than 128 MiB of memory.",
         "score 0; the engine reports OOMKilled"),
    Case("grader fork bomb", "contract", CONTRACT, fixed("fork-bomb"),
         "pids_limit", PIDS_MESSAGE_OVERRIDE.replace("{limit}", "64"),
         "score 0; fork fails at the pids limit; this queue overrides the message in its YAML "
         "(`messages: {pids_limit: ...}`)"),
    Case("grader prints 2 GB to stdout", "contract", CONTRACT, fixed("stdout-flood"),
         "output_too_large", "Your code printed more than 1 MiB.",
         "score 0; the watcher stops reading at the cap and kills the container", limit="stdout"),
    Case("grader floods stderr", "contract", CONTRACT, fixed("stderr-flood"),
         "output_too_large", "Your code printed more than 64 KiB.",
         "score 0; the watcher stops reading at the cap and kills the container", limit="stderr"),
    # --- infrastructure: never the student's zero -------------------------------------------
    Case("missing grader image", "missing", SQUARE, fixed(SQUARE_RIGHT),
         None, MISSING_IMAGE,
         "not pulled, nothing posted; the watcher logs why and keeps serving its other queues"),
    Case("grader image removed while the watcher runs", "vanishing", CONTRACT, fixed("ok"),
         None, VANISHING_IMAGE,
         "pulled, not graded, nothing posted: left for XQueue to serve again; the watcher logs why"),
)

QUEUES = {
    "python": {"grader_root": FIXTURES, "connections": 3, "image": GRADER_IMAGE, "limits": PYTHON_LIMITS},
    "contract": {"grader_root": FIXTURES, "connections": 2, "image": BADGRADER_IMAGE, "pull_policy": "never",
                 "limits": CONTRACT_LIMITS, "messages": {"pids_limit": PIDS_MESSAGE_OVERRIDE}},
    "missing": {"grader_root": FIXTURES, "connections": 1, "image": MISSING_IMAGE, "pull_policy": "never"},
    "vanishing": {"grader_root": FIXTURES, "connections": 1, "image": VANISHING_IMAGE, "pull_policy": "never"},
}

# A normal submission per queue that must still be graded right after the hostile ones.
FOLLOW_UPS = {"python": (SQUARE, SQUARE_RIGHT, 1.0), "contract": (CONTRACT, "ok", 1.0)}

VERDICT_LINE = re.compile(r"submission[ _]?(?:id=)?(\d+)\b[^\n]*?\bverdict[= ](\w+)")


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=check)


def build_badgrader():
    """Builds the test image from the local base (no registry), tagged BADGRADER_IMAGE."""
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    built = subprocess.run(["docker", "build", "-q", "-t", BADGRADER_IMAGE, BADGRADER_DIR],
                           capture_output=True, text=True, timeout=600, env=env)
    if built.returncode != 0:
        raise AssertionError("cannot build %s: %s" % (BADGRADER_IMAGE, built.stderr))


def image_exists(image):
    status, _ = engine_request("GET", "/images/%s/json" % image)
    return status == 200


def peak_rss_kib(pid):
    """The process's peak resident set in KiB; None once it has exited."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


EXPECTED_OUTPUT = re.compile(r"<dt>Correct output:</dt>\s*<dd><pre>.*?</pre></dd>", re.S)


def without_expected_output(text):
    """The posted text minus the staff answer's output, which upstream shows on purpose."""
    return EXPECTED_OUTPUT.sub("", text)


def visible_text(msg):
    """The posted HTML as the student reads it (entities decoded; tags kept for `never` checks)."""
    return html.unescape(msg)


class HostileRun(WatcherTestCase):
    """Submits every case of CASES_HERE at once to one watcher and records what happened."""

    CASES_HERE: Sequence[Case] = ()
    WAIT_SECONDS = 180

    @classmethod
    def setUpClass(cls):
        cls.prepare_images()
        super().setUpClass()
        cls.case_ids = {}
        try:
            cls.run_cases()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def prepare_images(cls):
        pass

    @classmethod
    def submit_case(cls, case):
        if case.xqueue_body is not None:
            return cls.xqueue.submit(case.queue, xqueue_body=case.xqueue_body())
        payload = case.payload if case.payload is not None else {"grader": case.grader}
        return cls.xqueue.submit(case.queue, student_response=case.submission(), grader_payload=payload)

    @classmethod
    def before_submitting(cls):
        pass

    @classmethod
    def submit_and_wait(cls, cases, seconds):
        for case in cases:
            cls.case_ids[case.name] = cls.submit_case(case)
        posted = {cls.case_ids[c.name] for c in cases if c.verdict is not None}
        cls.wait_until(lambda: cls.posted_ids() >= posted, seconds)

    @classmethod
    def run_cases(cls):
        cls.before_submitting()
        cls.submit_and_wait([c for c in cls.CASES_HERE if not c.late], cls.WAIT_SECONDS)
        cls.peak_rss_before_late_kib = peak_rss_kib(cls.watcher.process.pid)
        cls.submit_and_wait([c for c in cls.CASES_HERE if c.late], 60)
        cls.follow_up_ids = {queue: cls.xqueue.submit(queue, student_response=response,
                                                      grader_payload={"grader": grader})
                             for queue, (grader, response, _) in cls.FOLLOW_UPS.items()}
        cls.wait_until(lambda: cls.posted_ids() >= set(cls.follow_up_ids.values()), 60)
        # Everything that can be posted is: only containers prepared ahead and unused may remain while the
        # watcher runs; after it stops, nothing at all.
        cls.wait_until(lambda: used_containers(cls.watcher_id) == [], 15)
        cls.used_containers = used_containers(cls.watcher_id)
        cls.watcher_alive = cls.watcher.process.poll() is None
        cls.peak_rss_kib = peak_rss_kib(cls.watcher.process.pid)
        cls.results = {r["submission_id"]: r for r in cls.xqueue.results()}
        cls.stop_status = cls.watcher.stop()
        cls.leftover_containers = containers_labelled(cls.watcher_id)
        jobs = os.path.join(cls.tmp, "jobs")
        cls.leftover_jobs = os.listdir(jobs) if os.path.isdir(jobs) else []
        cls.log = cls.watcher.output()
        cls.verdicts = {}
        for match in VERDICT_LINE.finditer(cls.log):
            cls.verdicts.setdefault(int(match.group(1)), []).append(match.group(2))

    @classmethod
    def posted_ids(cls):
        return {r["submission_id"] for r in cls.xqueue.results()}

    @classmethod
    def wait_until(cls, predicate, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and cls.watcher.process.poll() is None:
            if predicate():
                return True
            time.sleep(0.2)
        return False

    # --- the checks every class runs ---------------------------------------------------------
    def check_case(self, case):
        sid = self.case_ids[case.name]
        result = self.results.get(sid)
        if case.verdict is None:
            self.check_not_posted(case, sid, result)
            return
        self.assertIsNotNone(result, "no result for %r (submission %s); watcher log tail:\n%s"
                             % (case.name, sid, self.log[-3000:]))
        body = result["body"]
        self.assertTrue(result["body_valid"], body)
        self.assertFalse(result["duplicate"], "posted twice")
        if case.verdict == "malformed":
            self.assertNotIn("graded", self.verdicts.get(sid, []), "a malformed submission is never graded")
            self.assertRegex(self.log, r"malformed submission %d\b" % sid, "the log says why")
        else:
            self.assertEqual(self.verdicts.get(sid), [case.verdict],
                             "verdict for %r (submission %s)" % (case.name, sid))
        self.assertAlmostEqual(body["score"], case.score, msg=case.name)
        self.assertIs(body["correct"], case.score == 1.0, case.name)
        text = visible_text(body["msg"])
        queue = self.QUEUES[case.queue]
        rule = told(case.verdict, queue.get("limits", {}), queue.get("messages"), case.limit)
        if rule is not None:
            self.assertIn(rule, text, "%r: the message docs/reliability.md's rules give for `%s`"
                          % (case.name, case.verdict))
        self.assertLessEqual(len(body["msg"].encode()), 256 * 1024, "the posted HTML is capped")
        for expected in (case.shows,) + case.also:
            self.assertIn(expected, text, "%r: student message" % case.name)
        produced = without_expected_output(text)
        for forbidden in case.never:
            self.assertNotIn(forbidden, produced, "%r: must not come out of the student's code" % case.name)
        self.assertNotIn(STAFF_PROBE, produced, "the student's code must never get the staff answer's output")
        self.assertEqual(self.xqueue.submission(sid)["accepted_results"], 1)

    def check_not_posted(self, case, sid, result):
        self.assertIsNone(result, "an infrastructure failure must never be posted: %r" % case.name)
        self.assertEqual(set(self.verdicts.get(sid, [])) - {"infrastructure"}, set(),
                         "%r must not get a student verdict" % case.name)
        self.assertEqual(self.xqueue.submission(sid)["accepted_results"], 0)
        reasons = [line for line in self.log.splitlines()
                   if case.shows in line and re.search(r"\b(warn|warning|error|critical)\b", line)]
        self.assertTrue(reasons, "the watcher must log why %r was not graded; log tail:\n%s"
                        % (case.name, self.log[-3000:]))

    def check_watcher_health(self):
        self.assertTrue(self.watcher_alive and self.peak_rss_kib is not None,
                        "the watcher died:\n" + self.log[-4000:])
        for queue, (_, _, score) in self.FOLLOW_UPS.items():
            result = self.results.get(self.follow_up_ids[queue])
            self.assertIsNotNone(result, "queue %s stopped serving after the hostile cases" % queue)
            self.assertEqual(result["body"]["score"], score, result["body"])
            self.assertIs(result["body"]["correct"], True)
        self.assertEqual(self.used_containers, [], "used containers left behind while running")
        self.assertEqual(self.stop_status, 0, "the watcher did not stop cleanly")
        self.assertEqual(self.leftover_containers, [], "containers left behind after the watcher stopped")
        self.assertEqual(self.leftover_jobs, [], "job directories left behind")
        self.assertLess(self.peak_rss_before_late_kib, MEMORY_BOUND_MIB * 1024,
                        "watcher peak RSS %d KiB over the hostile cases is above the %d MiB bound"
                        % (self.peak_rss_before_late_kib, MEMORY_BOUND_MIB))
        self.assertLess(self.peak_rss_kib, BIG_SUBMISSION_MEMORY_BOUND_MIB * 1024,
                        "watcher peak RSS %d KiB with the big submission is above the %d MiB bound"
                        % (self.peak_rss_kib, BIG_SUBMISSION_MEMORY_BOUND_MIB))


def make_case_tests(cases):
    """One test method per case, named after it."""
    def make(case):
        def test(self):
            self.check_case(case)
        test.__doc__ = case.name
        return test
    methods = {}
    for index, case in enumerate(cases):
        slug = re.sub(r"[^a-z0-9]+", "_", case.name.lower()).strip("_")
        methods["test_case_%02d_%s" % (index, slug)] = make(case)
    return methods


class HostileSubmissionsTest(HostileRun):
    QUEUES = QUEUES
    CASES_HERE = CASES
    FOLLOW_UPS = FOLLOW_UPS

    @classmethod
    def prepare_images(cls):
        build_badgrader()
        docker("tag", BADGRADER_IMAGE, VANISHING_IMAGE)

    @classmethod
    def before_submitting(cls):
        # Once the vanishing queue's worker has prepared its image (it polls only then), untag it:
        # the next container create finds no image, an infrastructure failure mid-run.
        cls.wait_until(lambda: cls.xqueue.requests(log=False)["by_queue"].get("get_submission", {})
                       .get("vanishing", 0) > 0, 30)
        docker("rmi", VANISHING_IMAGE)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if image_exists(VANISHING_IMAGE):
                docker("rmi", VANISHING_IMAGE, check=False)

    def test_watcher_survives_serves_and_leaves_nothing(self):
        self.check_watcher_health()

    def test_missing_image_is_never_pulled(self):
        sid = self.case_ids["missing grader image"]
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 0,
                         "a queue whose image is missing must not pull submissions it cannot grade")


for _name, _method in make_case_tests(CASES).items():
    setattr(HostileSubmissionsTest, _name, _method)


# --- docs/reliability.md -------------------------------------------------------------------------
TABLE_BEGIN = "<!-- BEGIN hostile-cases: generated from tests/e2e/test_hostile.py by scripts/reliability-report -->"
TABLE_END = "<!-- END hostile-cases -->"


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


IMAGE_NAMES = {GRADER_IMAGE: "Python image", BADGRADER_IMAGE: "test-badgrader image"}


def grader_cell(queue):
    name = IMAGE_NAMES.get(queue["image"], "`%s`" % queue["image"])
    runtime = queue.get("limits", {}).get("runtime")
    return name + (", %s" % runtime if runtime else "")


def case_table(cases, queues):
    lines = ["| Case | Grader | Verdict | The student sees | Outcome |", "|---|---|---|---|---|"]
    for case in cases:
        where = grader_cell(queues[case.queue])
        verdict = {None: "none (infrastructure)", "malformed": "none (malformed submission)"}.get(
            case.verdict, "`%s`" % case.verdict)
        shows = "“%s”" % case.shows if case.verdict else "nothing; the log names `%s`" % case.shows
        lines.append("| %s | %s | %s | %s | %s |" % (cell(case.name), where, verdict, cell(shows),
                                                     cell(case.outcome)))
    return "\n".join(lines) + "\n"


def generated_tables():
    """Every generated section of docs/reliability.md: marker name -> table text."""
    import test_gvisor  # noqa: WPS433 - the gVisor cases live with their test
    return {"hostile-cases": case_table(CASES, QUEUES), "gvisor-cases": test_gvisor.gvisor_table()}


def replace_section(document, name, table):
    begin = re.compile(r"<!-- BEGIN %s[^>]*-->\n" % re.escape(name))
    end = "<!-- END %s -->" % name
    match = begin.search(document)
    if not match or end not in document[match.end():]:
        raise AssertionError("docs/reliability.md has no %s section (<!-- BEGIN %s ... --> ... %s)"
                             % (name, name, end))
    stop = document.index(end, match.end())
    return document[:match.end()] + table + document[stop:]


def render_document(document):
    for name, table in generated_tables().items():
        document = replace_section(document, name, table)
    return document


# The limits docs/reliability.md's verdict table quotes in its example messages (the defaults).
DOC_EXAMPLE_LIMITS = {"timeout": "20s", "memory": "256Mi", "pids": 128, "stdout": "1Mi", "submission": "1Mi",
                      "N": "N"}
DOC_EXAMPLE_CASE_LIMIT = {"output_too_large": "stdout", "grader_error": "N"}


def documented_verdict_messages():
    """docs/reliability.md, "Every run ends in a verdict": label -> the default student message."""
    with open(DOC_PATH, encoding="utf-8") as handle:
        section = handle.read().split("## Every run ends in a verdict", 1)[1].split("\n## ", 1)[0]
    return {label: message.strip() for label, message in re.findall(r"^\| `(\w+)` \|[^\n]*\|([^|\n]*)\|$",
                                                                      section, re.M)}


class WrittenExpectationsTest(unittest.TestCase):
    """Each hostile case's expected verdict and message is written down, and where the watcher words the
    message itself it is the one docs/reliability.md's rules give (no engine needed)."""

    def all_cases(self):
        import test_gvisor  # noqa: WPS433 - the gVisor cases live with their test
        return [(case, QUEUES) for case in CASES] + [(case, test_gvisor.QUEUES) for case in test_gvisor.GVISOR_CASES]

    def test_every_case_names_a_known_outcome(self):
        for case, _ in self.all_cases():
            self.assertIn(case.verdict, set(TOLD) | {"graded", "malformed", None}, case.name)
            self.assertTrue(case.shows.strip(), "%r: nothing written for what the student is told" % case.name)

    def test_each_case_tells_the_student_what_the_rules_say(self):
        for case, queues in self.all_cases():
            queue = queues[case.queue]
            rule = told(case.verdict, queue.get("limits", {}), queue.get("messages"), case.limit)
            if rule is not None:
                self.assertEqual(case.shows, rule, "%r: `%s` under this queue's limits" % (case.name, case.verdict))

    def test_the_rules_are_the_docs_table(self):
        documented = documented_verdict_messages()
        for verdict in TOLD:
            self.assertIn(verdict, documented, "docs/reliability.md's verdict table has no row for `%s`" % verdict)
            self.assertEqual(documented[verdict], told(verdict, DOC_EXAMPLE_LIMITS, None,
                                                       DOC_EXAMPLE_CASE_LIMIT.get(verdict, "")), verdict)

    def test_limits_in_words(self):
        self.assertEqual(limit_in_words("timeout", "8s"), "8 s")
        self.assertEqual(limit_in_words("stderr", "64Ki"), "64 KiB")
        self.assertEqual(limit_in_words("memory", "128Mi"), "128 MiB")
        self.assertEqual(limit_in_words("pids", 32), "32")


class ReliabilityDocTest(unittest.TestCase):
    def test_doc_lists_every_verdict_the_watcher_posts(self):
        with open(os.path.join(SOURCE_DIR, "src", "verdicts", "verdicts.hpp"), encoding="utf-8") as handle:
            known = set(re.findall(r'\{Verdict::\w+, "(\w+)",', handle.read()))
        with open(DOC_PATH, encoding="utf-8") as handle:
            section = handle.read().split("## Every run ends in a verdict", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
        self.assertTrue(known, "no verdict labels found in src/verdicts/verdicts.hpp")
        # "infrastructure" is never posted: it is described in prose, not in the table.
        self.assertEqual(documented, known - {"infrastructure"})

    def test_doc_tables_match_the_cases_the_tests_assert(self):
        with open(DOC_PATH, encoding="utf-8") as handle:
            current = handle.read()
        self.assertEqual(current, render_document(current),
                         "docs/reliability.md is out of date with the tests; run scripts/reliability-report")


if __name__ == "__main__":
    unittest.main()
