"""The watcher binary end to end: stand-in XQueue, real engine, the Python grader image."""
import json
import os
import re
import signal
import time
import unittest

from harness import (SUBMISSION_LABEL, WatcherTestCase, containers_labelled, engine_request, grading_containers,
                     HERE)

COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"
WRONG = "def square(x):\n    return x + x\n"
RAISES = "def square(x):\n    raise ValueError('boom <b>')\n"
SLOW_RIGHT = "import time\ntime.sleep({seconds})\n" + RIGHT
QUEUE_LABEL = "org.openedx.xqueue-watcher.queue"


def inspect(container_id):
    status, body = engine_request("GET", f"/containers/{container_id}/json")
    assert status == 200, body
    return json.loads(body)


def graded_by(watcher, submission_id):
    """The id prefix of the container that graded `submission_id`, from the watcher's log."""
    match = re.search(rf"graded submission {submission_id} .*\bcontainer=([0-9a-f]+)", watcher.output())
    assert match, f"no 'graded submission {submission_id}' line with its container in the log"
    return match.group(1)


class GradingTest(WatcherTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 3, "limits": {"timeout": "30s"}}}
    MANAGER_EXTRA = "max_running_containers: 3\n"  # the default is the engine host's CPU count

    def test_right_submission_scores_one_with_correct_html(self):
        result = self.result_for(self.submit("course", "square/grader.py", RIGHT))
        body = result["body"]
        self.assertIs(body["correct"], True, body)
        self.assertEqual(body["score"], 1)
        self.assertIn("CORRECT", body["msg"])
        self.assertIn('class="result-output result-correct"', body["msg"])
        self.assertNotIn("result-incorrect", body["msg"])

    def test_wrong_submission_scores_zero_with_incorrect_html(self):
        result = self.result_for(self.submit("course", "square/grader.py", WRONG))
        body = result["body"]
        self.assertIs(body["correct"], False, body)
        self.assertEqual(body["score"], 0)
        self.assertIn("INCORRECT", body["msg"])
        self.assertIn("result-incorrect", body["msg"])

    def test_erroring_submission_scores_zero_and_escapes_its_output(self):
        result = self.result_for(self.submit("course", "square/grader.py", RAISES))
        body = result["body"]
        self.assertIs(body["correct"], False, body)
        self.assertEqual(body["score"], 0)
        self.assertIn("ValueError", body["msg"])
        self.assertNotIn("<b>", body["msg"], "student text must be escaped")
        self.assertIn("&lt;b&gt;", body["msg"])

    def test_three_connections_grade_in_parallel(self):
        ids = [self.submit("course", "square/grader.py", SLOW_RIGHT.format(seconds=3)) for _ in range(3)]
        results = [self.result_for(i) for i in ids]
        for result in results:
            self.assertEqual(result["body"]["score"], 1, result["body"])
        pulls = [self.xqueue.submission(i)["last_pull_time"] for i in ids]
        first_result = min(r["time"] for r in results)
        self.assertLess(max(pulls), first_result,
                        "all three submissions should be pulled before the first result is posted")

    def test_logs_in_again_after_the_session_is_dropped(self):
        logins_before = self.xqueue.requests(log=False)["counts"].get("login", 0)
        self.xqueue.drop_sessions()
        result = self.result_for(self.submit("course", "square/grader.py", RIGHT))
        self.assertEqual(result["body"]["score"], 1)
        self.assertGreater(self.xqueue.requests(log=False)["counts"].get("login", 0), logins_before)

    def test_each_connection_keeps_its_next_container_started_and_waiting(self):
        self.assertEqual(self.result_for(self.submit("course", "square/grader.py", RIGHT))["body"]["score"], 1)
        self.xqueue.wait_for(
            lambda: sorted((c["State"], c["Labels"][SUBMISSION_LABEL]) for c in containers_labelled(self.watcher_id))
            == [("running", "waiting")] * 3,
            timeout=30, what="one started container waiting for its job per connection")
        self.assertEqual(grading_containers(self.watcher_id), [])
        for container in containers_labelled(self.watcher_id):
            self.assertIn("XQW_WAIT_FOR_JOB=600", inspect(container["Id"])["Config"]["Env"])

    def test_a_container_started_before_the_submission_grades_it(self):
        running = lambda: {c["Id"] for c in containers_labelled(self.watcher_id) if c["State"] == "running"}
        self.xqueue.wait_for(lambda: len(running()) == 3, timeout=30, what="three waiting containers")
        waiting = running()
        submission = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(submission)["body"]["score"], 1)
        prefix = graded_by(self.watcher, submission)
        self.assertTrue(any(i.startswith(prefix) for i in waiting),
                        f"container {prefix} was not one of those waiting before the submission: {waiting}")

    def test_a_waiting_container_that_ended_is_replaced_on_the_critical_path(self):
        self.xqueue.wait_for(lambda: len(containers_labelled(self.watcher_id)) == 3, timeout=30,
                             what="three waiting containers")
        for container in containers_labelled(self.watcher_id):
            status, body = engine_request("POST", f"/containers/{container['Id']}/kill?signal=KILL")
            self.assertIn(status, (204, 409), body)
        ids = [self.submit("course", "square/grader.py", RIGHT) for _ in range(3)]
        for submission in ids:
            self.assertEqual(self.result_for(submission)["body"]["score"], 1)
        self.assertIn("had ended; grading it in a new one", self.watcher.output())

    def test_unknown_grader_is_reported_without_running_anything(self):
        result = self.result_for(self.submit("course", "../square/grader.py", RIGHT))
        body = result["body"]
        self.assertEqual(body["score"], 0)
        self.assertIn("ERROR", body["msg"])


class PrecreateModesTest(WatcherTestCase):
    QUEUES = {"created": {"grader_root": COURSE, "connections": 2, "precreate": "created"},
              "off": {"grader_root": COURSE, "connections": 2, "precreate": False}}

    def containers_of(self, queue):
        return [c for c in containers_labelled(self.watcher_id) if c["Labels"][QUEUE_LABEL] == queue]

    def test_created_keeps_containers_created_not_started(self):
        self.assertEqual(self.result_for(self.submit("created", "square/grader.py", RIGHT))["body"]["score"], 1)
        self.xqueue.wait_for(
            lambda: sorted((c["State"], c["Labels"][SUBMISSION_LABEL]) for c in self.containers_of("created"))
            == [("created", "precreated")] * 2,
            timeout=30, what="one created, never started container per connection")

    def test_off_makes_each_container_for_its_submission(self):
        submission = self.submit("off", "square/grader.py", WRONG)
        self.assertEqual(self.result_for(submission)["body"]["score"], 0)
        self.xqueue.wait_for(lambda: self.containers_of("off") == [], timeout=30, what="no container kept")
        prefix = graded_by(self.watcher, submission)
        self.assertRegex(prefix, "^[0-9a-f]{12}$")


class ShutdownTest(WatcherTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "30s"}}}

    def test_sigterm_during_a_slow_submission_still_posts_its_result(self):
        self.stop_during_a_slow_submission(signal.SIGTERM)

    def stop_during_a_slow_submission(self, signal_number):
        submission = self.submit("course", "square/grader.py", SLOW_RIGHT.format(seconds=4))
        self.xqueue.wait_for(lambda: f"submission {submission}: grading with" in self.watcher.output(), timeout=60,
                             what="the watcher starts grading the submission (its container has the job)")
        self.assertEqual(self.watcher.stop(signal_number, timeout=60), 0, self.watcher.output()[-3000:])
        results = [r for r in self.xqueue.results() if r["submission_id"] == submission]
        self.assertEqual(len(results), 1, "the in-flight result must be posted before exit")
        self.assertEqual(results[0]["body"]["score"], 1)
        self.assertEqual(containers_labelled(self.watcher_id), [], "no container may be left behind")
        self.assertEqual(os.listdir(os.path.join(self.tmp, "jobs")), [], "no job directory may be left behind")


class SigintShutdownTest(WatcherTestCase):
    """The same as ShutdownTest with SIGINT (a watcher is stopped once per class)."""
    QUEUES = ShutdownTest.QUEUES
    stop_during_a_slow_submission = ShutdownTest.stop_during_a_slow_submission

    def test_sigint_is_handled_as_sigterm(self):
        self.stop_during_a_slow_submission(signal.SIGINT)


class HttpBasicAuthTest(WatcherTestCase):
    """`http_basic_auth` (a proxy in front of XQueue) goes with every XQueue request the watcher makes."""
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1}}
    STANDIN_BASIC_AUTH = "proxy:proxy-pw"
    MANAGER_EXTRA = "http_basic_auth: {username: proxy, password: proxy-pw}\n"

    def test_every_request_carries_the_basic_auth(self):
        submission = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(submission)["body"]["score"], 1)
        log = self.xqueue.requests()["log"]
        self.assertLessEqual({"login", "get_submission", "put_result"}, {entry["endpoint"] for entry in log})
        refused = [(entry["endpoint"], entry["status"]) for entry in log if entry["status"] == 401]
        self.assertEqual(refused, [], "requests that went without the basic auth")


class ReloadTest(WatcherTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 1, "limits": {"timeout": "30s"}}}

    def setUp(self):
        self.watcher.wait_ready()

    def rewrite_queues(self, text):
        with open(os.path.join(self.tmp, "conf.d", "queues.yaml"), "w") as out:
            out.write(text)

    def test_sighup_adds_a_queue_without_dropping_the_job_in_flight(self):
        slow = self.submit("course", "square/grader.py", SLOW_RIGHT.format(seconds=3))
        self.xqueue.wait_for(lambda: self.xqueue.submission(slow)["pulled_count"] >= 1, timeout=60,
                             what="the slow submission pulled")
        self.rewrite_queues(f"queues:\n  course:\n    grader_root: {COURSE}\n"
                            f"  second:\n    grader_root: {COURSE}\n")
        reloaded = time.time()
        self.watcher.process.send_signal(signal.SIGHUP)
        second = self.submit("second", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(second)["body"]["score"], 1)
        slow_result = self.result_for(slow)
        self.assertEqual(slow_result["body"]["score"], 1)
        self.assertGreater(slow_result["time"], reloaded, "the slow job was still in flight at the reload")
        state = self.xqueue.submission(slow)
        self.assertEqual(state["accepted_results"], 1)
        # Pulled once: finished in flight by the old worker, not dropped and served (and graded) again.
        self.assertEqual(state["pulled_count"], 1, state)
        # The kept queue's new worker started while the retiring one still held its job (and its name).
        kept = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(kept)["body"]["score"], 1)
        self.assertNotIn("worker stopped by an unexpected error", self.watcher.output())

    def test_invalid_reload_keeps_the_running_configuration(self):
        self.rewrite_queues("queues:\n  course:\n    grader_root: /nonexistent\n")
        self.watcher.process.send_signal(signal.SIGHUP)
        self.xqueue.wait_for(lambda: "reload refused" in self.watcher.output(), timeout=20, what="reload refused")
        self.rewrite_queues(f"queues:\n  course:\n    grader_root: {COURSE}\n")
        self.assertEqual(self.result_for(self.submit("course", "square/grader.py", RIGHT))["body"]["score"], 1)


class AdmissionTest(WatcherTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 3, "limits": {"timeout": "30s"}}}
    MANAGER_EXTRA = "max_running_containers: 1\n"

    def test_no_more_containers_run_than_the_cap(self):
        ids = [self.submit("course", "square/grader.py", SLOW_RIGHT.format(seconds=1)) for _ in range(3)]
        most = 0
        while len({r["submission_id"] for r in self.xqueue.results()} & set(ids)) < 3:
            most = max(most, len(grading_containers(self.watcher_id)))
            time.sleep(0.05)
        self.assertEqual(most, 1, "the cap is one container grading")
        waiting = [c for c in containers_labelled(self.watcher_id) if c["State"] == "running"]
        self.assertLessEqual(len(waiting), 3, "at most one waiting container per connection")
        for i in ids:
            self.assertEqual(self.result_for(i)["body"]["score"], 1)

    def test_an_empty_queue_is_polled_at_most_once_per_interval(self):
        time.sleep(2.0)  # idle: three connections, poll_interval 0.2s
        polls = self.xqueue.requests(log=False)["polls"]["course"]
        self.assertGreaterEqual(polls["min_gap_after_empty"], 0.18, polls)


if __name__ == "__main__":
    unittest.main()
