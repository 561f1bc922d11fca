"""The watcher against the LMS's own XQueue API (edx-submissions XQueueViewSet, DESIGN.md 5a): the
stand-in in LMS mode, the server configured with `api: lms`, the real binary and real containers.

Each case asserts on what the stand-in recorded (put_results per submission with their HTTP status
and outcome, request counts), the watcher's Prometheus metrics and its log."""
import math
import os
import re
import time
import unittest
import urllib.request

from harness import DEMO_COURSE, HERE, WatcherTestCase, read_example, served_metrics_port

COURSE = os.path.join(HERE, "fixtures", "course")
SQUARE = "square/grader.py"
STACK = "04-stack-class/grader.py"
RIGHT = "def square(x):\n    return x * x\n"
WRONG = "def square(x):\n    return x + x\n"
SLOW_RIGHT = "import time\ntime.sleep({seconds})\n" + RIGHT
METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} from Prometheus text."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = METRIC_LINE.match(line)
        if match:
            labels = tuple(sorted(LABEL.findall(match.group(2) or "")))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


class LmsTestCase(WatcherTestCase):
    """One LMS-mode stand-in and one watcher (`api: lms`) per class, with its metrics port."""

    STANDIN_MODE = "lms"
    PROCESSING_DELAY = 900  # a pulled submission is not re-served within a class unless a test wants it
    WATCHER_ARGS = ("--metrics-address", "127.0.0.1", "--metrics-port", "0")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.metrics_port = served_metrics_port(cls.watcher)
        except AssertionError:
            cls.tearDownClass()
            raise
        cls.watcher.wait_ready()

    # -- helpers ----------------------------------------------------------------------------------
    def log_tail(self):
        return "\nwatcher log (tail):\n" + self.watcher.output()[-5000:]

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as reply:
            return parse_metrics(reply.read().decode())

    def metric(self, name, **labels):
        """The sample's value, None when the watcher does not export it."""
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def wait_until(self, predicate, timeout=90, what="condition"):
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.watcher.process.poll() is not None:
                self.fail(f"the watcher exited ({self.watcher.process.returncode}) waiting for {what}"
                          + self.log_tail())
            if time.time() > deadline:
                self.fail(f"{what} not reached within {timeout}s" + self.log_tail())
            time.sleep(0.1)

    def wait_metric_at_least(self, value, name, timeout=60, **labels):
        self.wait_until(lambda: (self.metric(name, **labels) or 0) >= value, timeout,
                        f"{name}{labels} >= {value}")
        return self.metric(name, **labels)

    def submit_lms(self, queue, grader, response, points_possible=None, payload_extra=None):
        payload = dict({"grader": grader}, **(payload_extra or {}))
        return self.xqueue.submit(queue, student_response=response, grader_payload=payload,
                                  points_possible=points_possible)

    def wait_status(self, sid, status, timeout=90):
        return self.wait_until(lambda: (lambda s: s if s["status"] == status else None)(self.xqueue.submission(sid)),
                               timeout, f"submission {sid} status {status}")

    def request_log(self, endpoint=None, method=None):
        return [e for e in self.xqueue.requests()["log"]
                if (endpoint is None or e["endpoint"] == endpoint) and (method is None or e["method"] == method)]

    def logins(self):
        """Logins the watcher made: the POSTs (each login is a GET for the CSRF cookie, then a POST)."""
        return len(self.request_log("login", "POST"))

    def journal_entries(self):
        journal = os.path.join(self.tmp, "journal")
        return [n for n in os.listdir(journal) if n.endswith(".json")] if os.path.isdir(journal) else []

    def wait_journal_empty(self, timeout=60):
        self.wait_until(lambda: not self.journal_entries(), timeout, "an empty journal")

    def log_count(self, text):
        return self.watcher.output().count(text)

    def warning_count(self, text):
        return sum(1 for line in self.watcher.output().splitlines() if " warning " in line and text in line)


class LmsGradingTest(LmsTestCase):
    """Grading through the LMS's API: scores, points, the payload the LMS rebuilds, no get_queuelen."""

    QUEUES = {
        "course": {"grader_root": COURSE, "connections": 2},
        "hidden": {"grader_root": COURSE, "hide_output": True, "precreate": "off"},
        "stack-points": {"grader_root": DEMO_COURSE, "points": 3, "precreate": "off"},
        "stack-one": {"grader_root": DEMO_COURSE, "points": 1, "precreate": "off"},
        "stack-fraction": {"grader_root": DEMO_COURSE, "precreate": "off"},
    }
    CONNECTIONS = 6  # the sum of the queues' connections

    def test_right_and_wrong_answers_are_graded_and_recorded(self):
        right = self.submit_lms("course", SQUARE, RIGHT)
        wrong = self.submit_lms("course", SQUARE, WRONG)
        for sid, score, correct, css in ((right, 1, True, "result-correct"), (wrong, 0, False, "result-incorrect")):
            state = self.wait_status(sid, "graded")
            self.assertEqual(state["accepted_results"], 1, state)
            self.assertEqual([(p["status"], p["outcome"], p["score"]) for p in state["put_results"]],
                             [(200, "graded", score)], state)
            result = self.result_for(sid)
            self.assertEqual(result["points_earned"], score, result)
            self.assertEqual(result["points_possible"], 1, result)
            self.assertIs(result["body"]["correct"], correct, result["body"])
            self.assertIn(css, result["body"]["msg"])
        # The LMS rotates the CSRF token at login and enforces it on put_result: every post passed it.
        posts = self.request_log("put_result")
        self.assertTrue(posts)
        self.assertEqual({e["status"] for e in posts}, {200}, posts)
        self.assertNotIn("not logged in", self.watcher.output(), self.log_tail())
        self.assertGreaterEqual(self.metric("xqueue_watcher_submissions_posted_total",
                                            outcome="accepted", queue="course"), 2)

    def test_no_get_queuelen_and_the_queue_length_gauge_is_nan(self):
        sid = self.submit_lms("course", SQUARE, RIGHT)
        self.wait_status(sid, "graded")  # the watcher has run well past its first queue-length round
        counts = self.xqueue.requests(log=False)["counts"]
        self.assertEqual(counts.get("get_queuelen", 0), 0, counts)
        self.assertGreater(counts.get("get_submission", 0), 0, counts)
        for queue in self.QUEUES:
            value = self.metric("xqueue_watcher_queue_length", queue=queue)
            self.assertIsNotNone(value, f"no queue length gauge for {queue}")
            self.assertTrue(math.isnan(value), f"queue length of {queue} is {value}, expected NaN")
        # No login for a queue length: one per connection, no more.
        self.wait_until(lambda: self.logins() >= self.CONNECTIONS, 30, "every connection logged in")
        time.sleep(1)
        self.assertEqual(self.logins(), self.CONNECTIONS, self.request_log("login", "POST"))

    def test_hide_output_from_the_queue_when_the_lms_drops_it_from_the_payload(self):
        # The payload asks for output; the LMS rebuilds it as {"grader": ...}: the queue's default rules.
        hidden = self.submit_lms("hidden", SQUARE, WRONG, payload_extra={"hide_output": False})
        shown = self.submit_lms("course", SQUARE, WRONG, payload_extra={"hide_output": True})
        self.assertEqual(self.xqueue.submission(hidden)["xqueue_body"].count("hide_output"), 0)
        hidden_body = self.result_for(hidden)["body"]
        shown_body = self.result_for(shown)["body"]
        self.assertEqual((hidden_body["score"], hidden_body["correct"]), (0, False), hidden_body)
        self.assertEqual((shown_body["score"], shown_body["correct"]), (0, False), shown_body)
        self.assertIn("INCORRECT", hidden_body["msg"])
        self.assertNotIn("result-output", hidden_body["msg"], "hide_output: true still shows the tests")
        self.assertNotIn("Your output", hidden_body["msg"])
        self.assertIn("result-incorrect", shown_body["msg"], "without hide_output the tests are shown")
        self.assertIn("Your output", shown_body["msg"])

    def test_points_turn_the_fraction_into_whole_points(self):
        wrong = read_example("04-stack-class/submissions/wrong.py")  # 2 of 3 tests pass
        right = read_example("04-stack-class/submissions/right.py")
        three = self.submit_lms("stack-points", STACK, wrong, points_possible=3)
        one = self.submit_lms("stack-one", STACK, right, points_possible=1)
        for sid, earned, possible in ((three, 2, 3), (one, 1, 1)):
            state = self.wait_status(sid, "graded")
            self.assertEqual([(p["status"], p["outcome"]) for p in state["put_results"]], [(200, "graded")], state)
            result = self.result_for(sid)
            self.assertEqual((result["points_earned"], result["points_possible"]), (earned, possible), result)
            self.assertEqual(result["body"]["score"], earned, result["body"])
        self.assertEqual(self.metric("xqueue_watcher_fractional_scores_total", queue="stack-points"), 0)
        self.assertEqual(self.metric("xqueue_watcher_fractional_scores_total", queue="stack-one"), 0)

    def test_a_fractional_score_to_the_lms_is_warned_about_and_counted(self):
        sid = self.submit_lms("stack-fraction", STACK, read_example("04-stack-class/submissions/wrong.py"))
        # The LMS answers 200 but records nothing: the submission goes to retry (and is served again).
        state = self.wait_until(lambda: (lambda s: s if s["put_results"] else None)(self.xqueue.submission(sid)),
                                90, f"a put_result for submission {sid}")
        first = state["put_results"][0]
        self.assertEqual(first["status"], 200, state)
        self.assertEqual(first["outcome"], "retry", state)
        self.assertAlmostEqual(first["score"], 2 / 3, places=3)
        self.assertEqual(state["accepted_results"], 0, state)
        self.assertNotEqual(state["status"], "graded", state)
        self.wait_metric_at_least(1, "xqueue_watcher_fractional_scores_total", queue="stack-fraction")
        self.wait_until(lambda: f"submission {sid}: posting the fractional score" in self.watcher.output(), 30,
                        "the fractional-score warning")
        line = next(l for l in self.watcher.output().splitlines()
                    if f"submission {sid}: posting the fractional score" in l)
        self.assertIn("to an LMS", line)
        self.assertIn("points", line)


class PutResultRefusalTest(LmsTestCase):
    """put_result answers the LMS gives: 403 wrong key, 400/404 refusals, 500 for an already answered
    submission (settled, never re-posted), 409 (transient, retried)."""

    QUEUES = {"course": {"grader_root": COURSE, "connections": 1}}

    def setUp(self):
        self.xqueue.clear_faults()
        self.wait_journal_empty()

    def put_result_count(self):
        return self.xqueue.requests(log=False)["counts"].get("put_result", 0)

    def posted(self, outcome):
        return self.metric("xqueue_watcher_submissions_posted_total", outcome=outcome, queue="course") or 0

    def settle_and_linger(self):
        """Until the journal is empty, then long enough for redelivery (first backoff 1 s) to have
        posted again had it kept the result."""
        self.wait_journal_empty()
        time.sleep(4)

    def refused_for_good(self, status, reason):
        posts, rejected, logins = self.put_result_count(), self.posted("rejected"), self.logins()
        self.xqueue.faults(http_error={"put_result": {"status": status, "times": 1}})
        sid = self.submit_lms("course", SQUARE, RIGHT)
        line = f"submission {sid}: result refused for good (HTTP {status}: {reason})"
        self.wait_until(lambda: line in self.watcher.output(), 90, f"the log line {line!r}")
        self.settle_and_linger()
        self.assertEqual(self.put_result_count() - posts, 1, "a permanent refusal was posted again" + self.log_tail())
        self.assertEqual(self.log_count(line), 1)
        self.assertEqual(self.posted("rejected") - rejected, 1)
        self.assertEqual(self.logins(), logins, "a refusal caused a login")
        state = self.xqueue.submission(sid)
        self.assertEqual((state["status"], state["accepted_results"]), ("pulled", 0), state)
        refusals = [l for l in self.watcher.output().splitlines() if line in l]
        self.assertRegex(refusals[0], r"\b(error|ERROR|err)\b", "a permanent refusal is logged as an error")

    def test_incorrect_key_403_is_posted_once_without_logging_in_again(self):
        posts, refused, logins = self.put_result_count(), self.posted("incorrect_key"), self.logins()
        self.xqueue.faults(incorrect_key={"times": 1})
        sid = self.submit_lms("course", SQUARE, RIGHT)
        state = self.wait_until(lambda: (lambda s: s if s["put_results"] else None)(self.xqueue.submission(sid)),
                                90, f"a put_result for submission {sid}")
        self.settle_and_linger()
        state = self.xqueue.submission(sid)
        self.assertEqual([(p["status"], p["outcome"]) for p in state["put_results"]], [(403, "incorrect_key")],
                         state)
        self.assertEqual(self.put_result_count() - posts, 1, self.log_tail())
        self.assertEqual(state["accepted_results"], 0, state)
        self.assertEqual(self.posted("incorrect_key") - refused, 1)
        self.assertEqual(self.logins(), logins, "the 403 'Incorrect key' made the watcher log in again")
        self.assertIn(f"submission {sid}: XQueue refused the key", self.watcher.output())
        self.assertNotIn("not logged in", self.watcher.output())

    def test_404_submission_does_not_exist_is_settled_with_its_reason(self):
        self.refused_for_good(404, "Submission does not exist")

    def test_400_incorrect_reply_format_is_settled_with_its_reason(self):
        self.refused_for_good(400, "Incorrect reply format")

    def test_500_for_an_already_answered_submission_is_not_posted_again(self):
        rejected = self.posted("rejected")
        self.xqueue.faults(lose_reply={"put_result": {"times": 1}})
        sid = self.submit_lms("course", SQUARE, RIGHT)
        line = f"submission {sid}: result refused for good (HTTP 500"
        self.wait_until(lambda: line in self.watcher.output(), 90, f"the log line {line!r}")
        self.settle_and_linger()
        state = self.xqueue.submission(sid)
        # The first post was recorded (its reply lost); the retry got the LMS's 500; nothing more.
        self.assertEqual([(p["status"], p["outcome"]) for p in state["put_results"]],
                         [(200, "graded"), (500, "invalid transition graded -> retry (500)")],
                         f"{state['put_results']}{self.log_tail()}")
        self.assertEqual((state["status"], state["accepted_results"]), ("graded", 1), state)
        self.assertEqual(self.posted("rejected") - rejected, 1)
        self.assertEqual(self.log_count(line), 1)

    def test_409_conflict_is_retried_until_accepted(self):
        accepted = self.posted("accepted")
        self.xqueue.faults(conflict={"times": 1})
        sid = self.submit_lms("course", SQUARE, RIGHT)
        state = self.wait_status(sid, "graded")
        self.settle_and_linger()
        state = self.xqueue.submission(sid)
        self.assertEqual([(p["status"], p["outcome"]) for p in state["put_results"]],
                         [(409, "conflict"), (200, "graded")], state)
        self.assertEqual(state["accepted_results"], 1, state)
        self.assertEqual(self.posted("accepted") - accepted, 1)
        self.assertIn(f"submission {sid}: put_result failed", self.watcher.output())


class PermissionTest(LmsTestCase):
    """The account is not in the LMS's Django group "xqueue": one configuration error, bounded logins
    and polls, and grading resumes once the account is put back in the group."""

    QUEUES = {"course": {"grader_root": COURSE, "connections": 2}}
    NOT_IN_XQUEUE_GROUP = ("lms",)
    LOGIN_POLL_INTERVAL = "1s"
    WINDOW = 13  # seconds watched while refused

    def test_permission_error_is_reported_once_and_pulling_resumes_when_fixed(self):
        sid = self.submit_lms("course", SQUARE, RIGHT)
        self.wait_metric_at_least(1, "xqueue_watcher_xqueue_requests_total", endpoint="get_submission",
                                  outcome="forbidden")
        started = time.time()
        time.sleep(self.WINDOW)  # an observation window: what the watcher does while refused
        refused = [e for e in self.request_log("get_submission") if e["status"] == 403]
        logins = self.logins()
        self.assertGreaterEqual(logins, 1)
        self.assertLessEqual(logins, 3, f"{logins} logins while refused" + self.log_tail())
        # Doubling from login_poll_interval (1 s): about 4 polls per connection in the window; a
        # fixed 1 s retry would make about 14 per connection.
        span = time.time() - started + 1
        self.assertLessEqual(len(refused), 12, f"{len(refused)} refused polls in {span:.0f}s: no backoff"
                             + self.log_tail())
        self.assertEqual(self.xqueue.submission(sid)["pulled_count"], 0)
        errors = [l for l in self.watcher.output().splitlines() if "configuration error:" in l]
        self.assertEqual(len(errors), 1, "\n".join(errors) + self.log_tail())
        self.assertIn("add it to the Django group 'xqueue'", errors[0])
        self.assertIn("You do not have permission to perform this action.", errors[0])
        self.assertGreaterEqual(self.metric("xqueue_watcher_xqueue_requests_total", endpoint="get_submission",
                                            outcome="forbidden"), 2)

        self.xqueue.config(not_in_xqueue_group=[])
        state = self.wait_status(sid, "graded", timeout=120)  # the backoff may be at 16 s by now
        self.assertEqual([(p["status"], p["outcome"], p["score"]) for p in state["put_results"]],
                         [(200, "graded", 1)], state)
        self.assertLessEqual(self.logins(), 3, self.log_tail())
        self.assertEqual(self.log_count("configuration error:"), 1)


class SameKeyReserveTest(LmsTestCase):
    """A pulled submission older than the LMS's processing delay is served again, with the same key,
    on every poll: the second connection gets it while the first is still grading it."""

    PROCESSING_DELAY = 2
    QUEUES = {"course": {"grader_root": COURSE, "connections": 2, "limits": {"timeout": "40s"}}}
    MANAGER_EXTRA = "max_running_containers: 2\n"

    def test_served_again_with_the_same_key_is_graded_and_posted_once(self):
        posted = {o: self.metric("xqueue_watcher_submissions_posted_total", outcome=o, queue="course")
                  for o in ("accepted", "rejected", "incorrect_key")}
        twice = self.metric("xqueue_watcher_submissions_served_twice_total", queue="course")
        sid = self.submit_lms("course", SQUARE, SLOW_RIGHT.format(seconds=8))
        state = self.wait_status(sid, "graded", timeout=120)
        self.wait_journal_empty()
        time.sleep(3)  # a second grading or post would show now
        state = self.xqueue.submission(sid)
        self.assertGreater(state["pulled_count"], 1, f"never re-served: {state}")
        self.assertEqual(len(state["keys_issued"]), 1, state)
        self.assertEqual([(p["status"], p["outcome"], p["score"]) for p in state["put_results"]],
                         [(200, "graded", 1)], f"{state['put_results']}{self.log_tail()}")
        self.assertEqual(state["accepted_results"], 1)
        self.assertEqual({e["status"] for e in self.request_log("put_result")}, {200})
        self.assertGreater(self.metric("xqueue_watcher_submissions_served_twice_total", queue="course"), twice)
        self.assertIn(f"submission {sid}: served again with the same key", self.watcher.output())
        self.assertEqual(self.log_count(f"submission {sid}: grading with"), 1, "graded more than once" + self.log_tail())
        self.assertEqual({o: self.metric("xqueue_watcher_submissions_posted_total", outcome=o, queue="course") - v
                          for o, v in posted.items()}, {"accepted": 1, "rejected": 0, "incorrect_key": 0})

    # A duplicate counts as no work found: the other connection polls at poll_interval, not in a loop
    # (before the fix: about 1,800 get_submission requests, and as many warning lines, a second).
    def test_a_re_served_submission_does_not_make_the_watcher_poll_in_a_loop(self):
        before = len(self.request_log("get_submission"))
        warned = self.warning_count("served again with the same key")
        sid = self.submit_lms("course", SQUARE, SLOW_RIGHT.format(seconds=6))
        self.wait_status(sid, "graded", timeout=120)
        state = self.xqueue.submission(sid)
        self.assertGreater(state["pulled_count"], 1, f"never re-served: {state}")
        polls = len(self.request_log("get_submission")) - before
        warnings = self.warning_count("served again with the same key") - warned
        # poll_interval is 0.2 s: some 40 polls in the ~6 s the duplicate is on offer, not thousands.
        self.assertLessEqual(polls, 150, f"{polls} get_submission requests while one submission was graded "
                                         f"(served {state['pulled_count']} times, {warnings} warnings)")
        # Warned once per connection that met the copy; the rest at debug.
        self.assertLessEqual(warnings, 2, f"{warnings} 'served again' warnings for one submission")


class LmsHttpBasicAuthTest(LmsTestCase):
    """`http_basic_auth` (a proxy in front of the LMS) goes with every request to the LMS's XQueue API too."""

    QUEUES = {"course": {"grader_root": COURSE, "precreate": "off"}}
    STANDIN_BASIC_AUTH = "proxy:proxy-pw"
    MANAGER_EXTRA = "http_basic_auth: {username: proxy, password: proxy-pw}\n"

    def test_every_request_carries_the_basic_auth(self):
        sid = self.submit_lms("course", SQUARE, RIGHT)
        self.assertEqual(self.wait_status(sid, "graded")["accepted_results"], 1)
        log = self.request_log()
        self.assertLessEqual({"login", "get_submission", "put_result"}, {entry["endpoint"] for entry in log})
        refused = [(entry["endpoint"], entry["status"]) for entry in log if entry["status"] == 401]
        self.assertEqual(refused, [], "requests that went without the basic auth")


if __name__ == "__main__":
    unittest.main()
