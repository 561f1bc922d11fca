"""Behaviours the documentation promises, each shown through the watcher binary, the XQueue stand-in and the
real engine (issue 15): login pacing, jobs outliving `shutdown_grace`, redelivery's backoff,
`pull_policy: always` and a queue whose runtime the engine does not have. Every wait polls with a deadline;
a window is only ever a measurement (login attempts counted over it), never a stand-in for an event."""
import glob
import json
import os
import signal
import time
import unittest
from urllib.parse import quote

from harness import (GRADER_IMAGE, HERE, WatcherProcess, WatcherTestCase, containers_labelled, engine_request,
                     grading_containers)

COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
SLOW_RIGHT = "import time\ntime.sleep({seconds})\n" + RIGHT


def wait_until(predicate, timeout, what, log=lambda: ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s\n%s" % (timeout, what, log()[-4000:]))


def seconds(text):
    return float(text.rstrip("s"))


class LoginPacingTest(WatcherTestCase):
    """docs/operators.md: `login_poll_interval` is the wait before logging in again after XQueue refused
    (or did not answer), whatever `poll_interval` says."""
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1}}
    POLL_INTERVAL = "0.1s"
    LOGIN_POLL_INTERVAL = "2s"
    WINDOW = 10.0

    @classmethod
    def before_watcher(cls):
        # No reply at all to the watcher's first login request: the server is unreachable from its side.
        cls.xqueue.faults(drop={"login": True})

    def login_attempts_over_a_window(self):
        """Login attempts (each begins with a GET of the login page) over WINDOW seconds from the first one
        seen after this call."""
        since = time.time()

        def attempts():
            return [e["time"] for e in self.xqueue.requests()["log"]
                    if e["endpoint"] == "login" and e["method"] == "GET" and e["time"] >= since]
        first = wait_until(attempts, 60, "a login attempt", self.watcher.output)[0]
        wait_until(lambda: time.time() >= first + self.WINDOW, self.WINDOW + 5, "the end of the window")
        self.assertIsNone(self.watcher.process.poll(), self.watcher.output()[-3000:])
        return [t for t in attempts() if t <= first + self.WINDOW]

    def assert_paced_by_login_poll_interval(self, attempts):
        login_poll = seconds(self.LOGIN_POLL_INTERVAL)
        # One worker at login_poll_interval, plus the queue-length loop (one login every 15 s at most).
        most = int(self.WINDOW / login_poll) + 1 + 1
        self.assertLessEqual(len(attempts), most,
                             "logins every poll_interval (%s), not every login_poll_interval (%s): %s"
                             % (self.POLL_INTERVAL, self.LOGIN_POLL_INTERVAL,
                                [round(t - attempts[0], 2) for t in attempts]))
        self.assertGreaterEqual(len(attempts), 2, "the watcher must keep trying to log in")

    def test_1_an_unreachable_server_is_asked_again_every_login_poll_interval(self):
        self.assert_paced_by_login_poll_interval(self.login_attempts_over_a_window())
        self.assertIn("login to", self.watcher.output())

    def test_2_a_server_refusing_logins_is_asked_again_every_login_poll_interval(self):
        self.xqueue.faults(clear=True, http_error={"login": 500})
        self.assert_paced_by_login_poll_interval(self.login_attempts_over_a_window())

    def test_3_grades_once_the_server_lets_it_in(self):
        self.xqueue.clear_faults()
        submission = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(submission, timeout=60)["body"]["score"], 1)


class ShutdownGraceOverTest(WatcherTestCase):
    """docs/reliability.md: jobs still running when `shutdown_grace` ends are killed and stay journalled;
    the next start grades and posts them (once)."""
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "60s"}}}
    SHUTDOWN_GRACE = "1s"
    PROCESSING_DELAY = 600  # XQueue does not serve it again meanwhile: only the journal can finish it

    def journalled(self):
        entries = []
        for path in glob.glob(os.path.join(self.tmp, "journal", "*.json")):
            with open(path, encoding="utf-8") as entry:
                entries.append(json.load(entry))
        return entries

    def test_a_job_outliving_the_grace_is_killed_kept_and_graded_after_restart(self):
        submission = self.submit("course", "square/grader.py", SLOW_RIGHT.format(seconds=10))
        wait_until(lambda: grading_containers(self.watcher_id), 60, "the submission's container to run",
                   self.watcher.output)
        self.assertEqual(self.watcher.stop(signal.SIGTERM, timeout=30), 0, self.watcher.output()[-3000:])
        log = self.watcher.output()
        self.assertIn("grace period over; removing the containers still running", log)
        self.assertRegex(log, r"submission %d: (still grading when shutdown_grace ended; killed, journalled"
                              r"|shutting down before it was graded; journalled)" % submission)
        self.assertEqual(containers_labelled(self.watcher_id), [], "the running container must be removed")
        self.assertEqual([r for r in self.xqueue.results() if r["submission_id"] == submission], [],
                         "a killed job must not be posted (never a zero for the student)")
        entries = self.journalled()
        self.assertEqual([(e["submission_id"], e.get("result")) for e in entries], [(submission, None)],
                         "the killed job must stay in the journal, ungraded")

        self.__class__.watcher = WatcherProcess(self.tmp, self.watcher_id)
        result = self.result_for(submission, timeout=120)
        self.assertEqual(result["body"]["score"], 1)
        wait_until(lambda: self.journalled() == [], 30, "the journal entry to be settled", self.watcher.output)
        self.assertEqual(self.watcher.stop(), 0, self.watcher.output()[-3000:])
        results = [r for r in self.xqueue.results() if r["submission_id"] == submission]
        self.assertEqual(len(results), 1, "graded and posted exactly once: %s" % results)
        self.assertEqual(self.xqueue.submission(submission)["pulled_count"], 1,
                         "the restart grades it from the journal, not by pulling it again")
        self.assertEqual(containers_labelled(self.watcher_id), [])
        self.assertEqual(os.listdir(os.path.join(self.tmp, "jobs")), [], "no job directory may be left")


class RedeliveryBackoffTest(WatcherTestCase):
    """docs/reliability.md: a put_result that fails is tried 3 times quickly, then by the journal's
    redelivery loop with capped exponential backoff (1 s, 2 s, 4 s, ... up to 60 s), and accepted once."""
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1}}
    FAILURES = 7  # 3 quick tries, then 4 redelivery attempts (waits of about 1, 2, 4 and 8 s)

    @classmethod
    def before_watcher(cls):
        cls.xqueue.faults(http_error={"put_result": {"status": 500, "times": cls.FAILURES}})

    def test_a_failing_put_result_is_retried_with_growing_gaps_and_accepted_once(self):
        submission = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(submission, timeout=120)["body"]["score"], 1)
        posts = [e for e in self.xqueue.requests()["log"] if e["endpoint"] == "put_result"]
        self.assertEqual([e["fault"] for e in posts[:self.FAILURES]], ["http_error 500"] * self.FAILURES)
        self.assertEqual(len(posts), self.FAILURES + 1, "accepted by the first post after the failures: %s" % posts)
        self.assertEqual(len([r for r in self.xqueue.results() if r["submission_id"] == submission]), 1)
        times = [e["time"] for e in posts]
        gaps = [b - a for a, b in zip(times, times[1:])]
        shown = [round(g, 2) for g in gaps]
        quick, redelivery = gaps[:2], gaps[3:]  # gaps[2]: from the worker's last try to the loop's first
        self.assertLess(max(quick), 3, "the worker's 3 quick tries: %s" % shown)
        self.assertGreaterEqual(redelivery[0], 0.8, "redelivery waits 1 s first: %s" % shown)
        self.assertLess(redelivery[0], 3, "redelivery waits 1 s first: %s" % shown)
        for earlier, later in zip(redelivery, redelivery[1:]):
            self.assertGreaterEqual(later, earlier, "gaps must not shrink: %s" % shown)
            self.assertGreaterEqual(later / earlier, 1.4, "gaps must roughly double: %s" % shown)
            self.assertLessEqual(later / earlier, 3.0, "gaps must roughly double: %s" % shown)


LOCAL_ONLY_IMAGE = "xqueue-watcher/test-pull-always-%d" % os.getpid()


class PullPolicyAlwaysTest(WatcherTestCase):
    """docs/operators.md: `pull_policy: always` pulls the image (at start, on reload, whenever a connection
    prepares its grader); when the pull fails and the engine has the image, that copy grades. The image here
    is tagged on this engine only (no registry is reachable), so every pull fails."""
    QUEUES = {"always": {"grader_root": COURSE, "connections": 1, "image": LOCAL_ONLY_IMAGE + ":latest",
                         "pull_policy": "always"}}

    @classmethod
    def before_watcher(cls):
        status, body = engine_request(
            "POST", "/images/%s/tag?repo=%s&tag=latest" % (GRADER_IMAGE, quote(LOCAL_ONLY_IMAGE, safe="")))
        assert status == 201, "could not tag %s as %s: %s" % (GRADER_IMAGE, LOCAL_ONLY_IMAGE, body)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            engine_request("DELETE", "/images/%s:latest" % LOCAL_ONLY_IMAGE)

    def test_the_pull_is_tried_and_a_failed_one_falls_back_to_the_engines_copy(self):
        submission = self.submit("always", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(submission)["body"]["score"], 1, "graded with the engine's copy")
        log = self.watcher.output()
        image = LOCAL_ONLY_IMAGE + ":latest"
        self.assertIn("pulling image %s" % image, log, "pull_policy always must try to pull")
        self.assertIn("pull policy always: pulling image %s failed" % image, log)
        self.assertIn("using the engine's copy", log)
        self.assertNotIn("cannot prepare image", log, "the queue must not stop pulling because the pull failed")


UNKNOWN_RUNTIME = "no-such-runtime"


class MissingRuntimeTest(WatcherTestCase):
    """docs/reliability.md: a queue whose runtime the engine does not have does not pull at all (like a queue
    whose image is missing); the watcher's other queues are served."""
    QUEUES = {"served": {"grader_root": COURSE, "connections": 1},
              "unknown-runtime": {"grader_root": COURSE, "connections": 1, "limits": {"runtime": UNKNOWN_RUNTIME}}}

    def test_the_queue_never_pulls_while_another_is_served(self):
        stranded = self.submit("unknown-runtime", "square/grader.py", RIGHT)
        served = self.submit("served", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(served)["body"]["score"], 1)
        # Let the served queue be polled a good many more times: the other had as many chances to pull.
        polls = lambda: self.xqueue.requests(log=False)["by_queue"].get("get_submission", {}).get("served", 0)
        target = polls() + 20
        wait_until(lambda: polls() >= target, 60, "20 more polls of the served queue", self.watcher.output)
        self.assertEqual(self.xqueue.submission(stranded)["pulled_count"], 0,
                         "a queue whose runtime is missing must not pull submissions it cannot grade")
        self.assertEqual(self.xqueue.requests(log=False)["by_queue"].get("get_submission", {}).get(
            "unknown-runtime", 0), 0, "nor even ask for one")
        self.assertEqual([r for r in self.xqueue.results() if r["submission_id"] == stranded], [])
        self.assertIn("the Docker engine has no runtime '%s'; not pulling submissions" % UNKNOWN_RUNTIME,
                      self.watcher.output())
        self.assertIsNone(self.watcher.process.poll(), "the watcher keeps running")


if __name__ == "__main__":
    unittest.main()
