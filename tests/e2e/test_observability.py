"""A running watcher's /metrics, /healthz and /readyz, and its JSON log lines."""
import json
import os
import re
import time
import unittest
import urllib.error
import urllib.request

from harness import HERE, WatcherTestCase, served_metrics_port

COURSE = os.path.join(HERE, "fixtures", "course")
RIGHT = "def square(x):\n    return x * x\n"


def fetch(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


class ObservabilityTest(WatcherTestCase):
    QUEUES = {"course": {"grader_root": COURSE, "connections": 2}}
    WATCHER_ARGS = ("--metrics-address", "127.0.0.1", "--metrics-port", "0", "--log-format", "json")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.port = served_metrics_port(cls.watcher, timeout=30)

    def test_ready_and_alive_once_logged_in(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            status, _, body = fetch(self.port, "/readyz")
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200, body)
        self.assertIs(json.loads(body)["ready"], True)
        status, _, body = fetch(self.port, "/healthz")
        self.assertEqual(status, 200, body)
        self.assertEqual(fetch(self.port, "/nope")[0], 404)

    def test_metrics_count_a_graded_submission(self):
        sid = self.submit("course", "square/grader.py", RIGHT)
        self.assertEqual(self.result_for(sid)["body"]["score"], 1)
        deadline = time.time() + 20
        while time.time() < deadline:
            status, content_type, text = fetch(self.port, "/metrics")
            if 'xqueue_watcher_submissions_posted_total{outcome="accepted",queue="course"}' in text:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain"), content_type)
        for line in ('xqueue_watcher_submissions_pulled_total{queue="course"}',
                     'xqueue_watcher_submissions_graded_total{queue="course",verdict="graded"}',
                     'xqueue_watcher_submissions_posted_total{outcome="accepted",queue="course"}',
                     'xqueue_watcher_engine_up 1',
                     'xqueue_watcher_container_phase_duration_seconds_count{phase="run"}',
                     'xqueue_watcher_build_info{version="'):
            self.assertIn(line, text)
        self.assertRegex(text, r'xqueue_watcher_queue_length\{queue="course"\} \d')

    def test_a_malformed_submission_is_counted_and_answered(self):
        sid = self.xqueue.submit("course", student_response=RIGHT, grader_payload="grader.py, please")
        self.assertIn("reached the grader malformed", self.result_for(sid)["body"]["msg"])
        line = 'xqueue_watcher_submissions_graded_total{queue="course",verdict="malformed"} 1'
        deadline = time.time() + 20
        while time.time() < deadline and line not in fetch(self.port, "/metrics")[2]:
            time.sleep(0.1)
        self.assertIn(line, fetch(self.port, "/metrics")[2])

    def test_every_log_line_is_json_and_grading_lines_carry_their_fields(self):
        sid = self.submit("course", "square/grader.py", RIGHT)
        self.result_for(sid)
        lines = [json.loads(line) for line in self.watcher.output().splitlines() if line.strip()]
        graded = [l for l in lines if l.get("submission_id") == sid and "verdict" in l]
        self.assertTrue(graded, "no grading line for the submission")
        self.assertEqual(graded[0]["queue"], "course")
        self.assertEqual(graded[0]["verdict"], "graded")
        self.assertIn("total", graded[0]["durations_ms"])
        self.assertNotIn("secret-pw", self.watcher.output(), "a password reached the log")


if __name__ == "__main__":
    unittest.main()
