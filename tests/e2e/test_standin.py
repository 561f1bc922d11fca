"""The XQueue stand-in behaves like openedx/xqueue over real HTTP (urllib with a cookie jar).

Run: cd tests/e2e && python3 -m unittest -v test_standin
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

from xqueue_standin import GraderSession, StandinClient, StandinConfig, XQueueStandin  # noqa: E402

QUEUE = "python-queue"
PAYLOAD = {"grader": "ps01/hello/grader.py"}
GOOD_RESULT = {"correct": True, "score": 1, "msg": "<p>All tests passed</p>"}


class StandinTestCase(unittest.TestCase):
    """A fresh stand-in per test: one declared queue, a 1 s processing delay, CSRF on."""

    config = StandinConfig(queues=[QUEUE], processing_delay=1.0, users={"lms": "password", "other": "s3cret"})

    def setUp(self):
        self.xq = XQueueStandin(self.config).start()
        self.addCleanup(self.xq.stop)
        self.control = self.xq.client()
        self.grader = GraderSession(self.xq.base_url)

    def logged_in(self, username="lms", password="password") -> GraderSession:
        session = GraderSession(self.xq.base_url, username, password)
        self.assertEqual(session.login(), {"return_code": 0, "content": "Logged in"})
        return session

    def pull(self, session: GraderSession, queue: str = QUEUE) -> dict:
        pulled = session.pull(queue)
        self.assertIsNotNone(pulled, f"queue {queue} unexpectedly empty")
        return pulled


class LoginTest(StandinTestCase):
    def test_get_login_sets_csrf_cookie(self):
        reply = self.grader.raw("GET", "/xqueue/login/")
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json(), {"return_code": 1, "content": "login_required"})
        self.assertTrue(self.grader.cookie("csrftoken"))
        self.assertIsNone(self.grader.cookie("sessionid"))

    def test_login_with_csrf_handshake(self):
        self.grader.raw("GET", "/xqueue/login/")
        token = self.grader.cookie("csrftoken")
        reply = self.grader.raw("POST", "/xqueue/login/", form={"username": "lms", "password": "password"},
                                headers={"X-CSRFToken": token, "Referer": self.xq.url("/xqueue/login/")})
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body, b'{"return_code": 0, "content": "Logged in"}')
        self.assertTrue(self.grader.cookie("sessionid"))
        self.assertNotEqual(self.grader.cookie("csrftoken"), token, "login rotates the CSRF token, as Django")
        self.assertEqual(self.grader.get_queuelen(QUEUE).json(), {"return_code": 0, "content": 0})

    def test_csrf_failures_are_403(self):
        self.grader.raw("GET", "/xqueue/login/")
        token = self.grader.cookie("csrftoken")
        form = {"username": "lms", "password": "password"}
        referer = self.xq.url("/xqueue/login/")
        cases = {
            "no token header": {"Referer": referer},
            "no referer": {"X-CSRFToken": token},
            "wrong token": {"X-CSRFToken": token + "x", "Referer": referer},
            "foreign referer": {"X-CSRFToken": token, "Referer": "http://evil.example/xqueue/login/"},
        }
        for name, headers in cases.items():
            with self.subTest(name):
                reply = self.grader.raw("POST", "/xqueue/login/", form=form, headers=headers)
                self.assertEqual(reply.status, 403)
                self.assertIn("CSRF verification failed", reply.text)
        fresh = GraderSession(self.xq.base_url)  # never did the GET: no cookie
        headers = {"X-CSRFToken": token, "Referer": referer}
        reply = fresh.raw("POST", "/xqueue/login/", form=form, headers=headers)
        self.assertEqual(reply.status, 403)
        self.assertIn("CSRF cookie not set", reply.text)
        self.assertIsNone(self.grader.cookie("sessionid"))

    def test_login_without_csrf_when_switched_off(self):
        plain = {"username": "lms", "password": "password"}
        self.assertEqual(self.grader.raw("POST", "/xqueue/login/", form=plain).status, 403)
        self.control.config(csrf=False)
        reply = self.grader.raw("POST", "/xqueue/login/", form=plain)
        self.assertEqual(reply.json(), {"return_code": 0, "content": "Logged in"})

    def test_wrong_credentials_and_missing_fields(self):
        self.assertEqual(GraderSession(self.xq.base_url, "lms", "nope").login(),
                         {"return_code": 1, "content": "Incorrect login credentials"})
        self.assertEqual(GraderSession(self.xq.base_url, "ghost", "password").login(),
                         {"return_code": 1, "content": "Incorrect login credentials"})
        self.control.config(csrf=False)
        reply = self.grader.raw("POST", "/xqueue/login/", form={"username": "lms"})
        self.assertEqual(reply.json(), {"return_code": 1, "content": "Insufficient login info"})

    def test_configured_users(self):
        self.logged_in("other", "s3cret")
        self.control.config(users={"new": "pw"})
        self.logged_in("new", "pw")
        self.assertEqual(GraderSession(self.xq.base_url).login()["return_code"], 1)

    def test_basic_auth_in_front(self):
        self.control.config(basic_auth="proxy:pw")
        self.assertEqual(self.grader.raw("GET", "/xqueue/login/").status, 401)
        session = GraderSession(self.xq.base_url, basic_auth="proxy:pw")
        self.assertEqual(session.login()["return_code"], 0)


class AuthTest(StandinTestCase):
    def test_logged_out_calls_redirect_to_login(self):
        for path, method in (("/xqueue/get_submission/", "GET"), ("/xqueue/get_queuelen/", "GET"),
                             ("/xqueue/put_result/", "POST")):
            with self.subTest(path):
                reply = self.grader.raw(method, path, query={"queue_name": QUEUE},
                                        form={} if method == "POST" else None)
                self.assertEqual(reply.status, 302)
                expected = "/xqueue/login?next=" + path + "%3Fqueue_name%3D" + QUEUE
                self.assertEqual(reply.headers["Location"], expected)

    def test_unauth_status_401_and_403(self):
        for status in (401, 403):
            with self.subTest(status):
                self.control.config(unauth_status=status)
                self.assertEqual(self.grader.get_submission(QUEUE).status, status)

    def test_logout_ends_the_session(self):
        session = self.logged_in()
        self.assertEqual(session.raw("GET", "/xqueue/logout/").json(),
                         {"return_code": 0, "content": "Goodbye"})
        self.assertEqual(session.get_submission(QUEUE).status, 302)

    def test_status_needs_no_login_and_missing_slash_redirects(self):
        self.assertEqual(self.grader.raw("GET", "/xqueue/status/").json(),
                         {"return_code": 0, "content": "OK"})
        reply = self.grader.raw("GET", "/xqueue/get_queuelen", query={"queue_name": QUEUE})
        self.assertEqual(reply.status, 301)
        self.assertEqual(reply.headers["Location"], f"/xqueue/get_queuelen/?queue_name={QUEUE}")
        self.assertEqual(self.grader.raw("GET", "/xqueue/nothing/").status, 404)


class GetSubmissionTest(StandinTestCase):
    def test_round_trip_decodes_layer_by_layer(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "def f():\n    return 'é'\n", PAYLOAD,
                                  student_info={"anonymous_student_id": "abc", "random_seed": 7})
        reply = session.get_submission(QUEUE)
        self.assertEqual(reply.status, 200)
        outer = reply.json()
        self.assertEqual(set(outer), {"return_code", "content"})
        self.assertEqual(outer["return_code"], 0)
        self.assertIsInstance(outer["content"], str)
        content = json.loads(outer["content"])
        self.assertEqual(set(content), {"xqueue_header", "xqueue_body", "xqueue_files"})
        for field in content.values():
            self.assertIsInstance(field, str)
        header = json.loads(content["xqueue_header"])
        self.assertEqual(header["submission_id"], sid)
        self.assertRegex(header["submission_key"], "^[0-9a-f]{32}$")
        body = json.loads(content["xqueue_body"])
        self.assertEqual(set(body), {"student_info", "grader_payload", "student_response"})
        self.assertEqual(body["student_response"], "def f():\n    return 'é'\n")
        self.assertIsInstance(body["grader_payload"], str)
        self.assertEqual(json.loads(body["grader_payload"]), PAYLOAD)
        # The LMS (capa CodeResponse) sends student_info as a JSON string.
        self.assertIsInstance(body["student_info"], str)
        self.assertEqual(json.loads(body["student_info"]), {"anonymous_student_id": "abc", "random_seed": 7})
        self.assertEqual(json.loads(content["xqueue_files"]), {})

    def test_student_info_as_object_and_raw_payloads(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "x", "not json at all", student_info={"a": 1}, student_info_as_object=True)
        body = self.pull(session)["body"]
        self.assertEqual(body["student_info"], {"a": 1})
        self.assertEqual(body["grader_payload"], "not json at all")
        self.control.submit(QUEUE, xqueue_body="{broken")
        content = json.loads(session.get_submission(QUEUE).json()["content"])
        self.assertEqual(content["xqueue_body"], "{broken")

    def test_files_are_listed_and_served(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "", PAYLOAD, files={"answer.py": {"content": "print(42)\n"},
                                                       "remote.txt": "http://files.example/remote.txt"})
        files = self.pull(session)["files"]
        self.assertEqual(files["remote.txt"], "http://files.example/remote.txt")
        with urllib.request.urlopen(files["answer.py"], timeout=5) as response:
            self.assertEqual(response.read(), b"print(42)\n")

    def test_queue_errors(self):
        session = self.logged_in()
        self.assertEqual(session.get_submission(QUEUE).body,
                         ('{"return_code": 1, "content": "Queue \'%s\' is empty"}' % QUEUE).encode())
        self.assertEqual(session.get_submission("nope").json(),
                         {"return_code": 1, "content": "Queue 'nope' not found"})
        self.assertEqual(session.raw("GET", "/xqueue/get_submission/").json()["content"],
                         "'get_submission' must provide parameter 'queue_name'")

    def test_served_oldest_first_and_only_once(self):
        session = self.logged_in()
        first = self.control.submit(QUEUE, "a", PAYLOAD)
        second = self.control.submit(QUEUE, "b", PAYLOAD)
        self.assertEqual([self.pull(session)["header"]["submission_id"] for _ in range(2)], [first, second])
        self.assertIsNone(session.pull(QUEUE))


class PutResultTest(StandinTestCase):
    def test_accepted_result_is_recorded_and_retires_the_submission(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        reply = session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual(reply.body, b'{"return_code": 0, "content": ""}')
        [result] = self.control.results()
        self.assertEqual(result["submission_id"], sid)
        self.assertEqual(result["xqueue_header"], pulled["raw_header"])
        self.assertEqual(result["body"], GOOD_RESULT)
        self.assertTrue(result["body_valid"])
        self.assertFalse(result["duplicate"])
        state = self.control.submission(sid)
        self.assertEqual((state["state"], state["accepted_results"]), ("done", 1))
        time.sleep(1.2)  # beyond the processing delay: a graded submission is never served again
        self.assertIsNone(session.pull(QUEUE))

    def test_wrong_key_unknown_submission_and_bad_format(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        wrong = json.dumps({"submission_id": sid, "submission_key": "0" * 32})
        self.assertEqual(session.put_result(wrong, GOOD_RESULT).json(),
                         {"return_code": 1, "content": "Incorrect key for submission"})
        unknown = json.dumps({"submission_id": 999, "submission_key": "k"})
        self.assertEqual(session.put_result(unknown, GOOD_RESULT).json(),
                         {"return_code": 1, "content": "Submission does not exist"})
        for bad_header in ("not json", "[1, 2]", json.dumps({"submission_id": sid})):
            with self.subTest(bad_header):
                self.assertEqual(session.put_result(bad_header, GOOD_RESULT).json(),
                                 {"return_code": 1, "content": "Incorrect reply format"})
        missing_body = session.raw("POST", "/xqueue/put_result/",
                                   form={"xqueue_header": pulled["raw_header"]})
        self.assertEqual(missing_body.json()["content"], "Incorrect reply format")
        non_integer = json.dumps({"submission_id": "abc", "submission_key": "k"})
        self.assertEqual(session.put_result(non_integer, GOOD_RESULT).status, 500)
        self.assertEqual(session.raw("GET", "/xqueue/put_result/").json(),
                         {"return_code": 1, "content": "'put_result' must use HTTP POST"})
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.control.submission(sid)["rejected_put_results"], 1)
        self.assertEqual(len(self.control.rejected()), 7)
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)

    def test_malformed_body_is_accepted_as_upstream_but_flagged(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        self.assertEqual(session.put_result(pulled["raw_header"], "<html>not json").json()["return_code"], 0)
        [result] = self.control.results()
        self.assertIsNone(result["body"])
        self.assertFalse(result["body_valid"])

    def test_same_key_twice_is_accepted_as_duplicate(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        for _ in range(2):
            self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)
        self.assertEqual([r["duplicate"] for r in self.control.results()], [False, True])

    def test_form_over_django_upload_limit_is_400(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        header = self.pull(session)["raw_header"]
        huge = dict(GOOD_RESULT, msg="<pre>" + "x" * 2621440 + "</pre>")
        self.assertEqual(session.put_result(header, huge).status, 400)
        self.assertEqual(self.control.results(), [])
        large = dict(GOOD_RESULT, msg="<pre>" + "x" * 2000000 + "</pre>")
        self.assertEqual(session.put_result(header, large).json()["return_code"], 0)

    def test_concurrent_pullers_get_each_submission_once(self):
        ids = set(self.control.submit(QUEUE, "a", PAYLOAD, count=40))
        sessions = [self.logged_in() for _ in range(4)]
        pulled, lock = [], threading.Lock()

        def drain(session):
            while (item := session.pull(QUEUE)) is not None:
                self.assertEqual(session.put_result(item["raw_header"], GOOD_RESULT).json()["return_code"], 0)
                with lock:
                    pulled.append(item["header"]["submission_id"])

        threads = [threading.Thread(target=drain, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        self.assertEqual(sorted(pulled), sorted(ids))
        self.assertEqual(len(self.control.results()), 40)

    def test_multipart_form_is_understood(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        boundary = "standinboundary"
        parts = []
        fields = (("xqueue_header", pulled["raw_header"]), ("xqueue_body", json.dumps(GOOD_RESULT)))
        for name, value in fields:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
        data = ("".join(parts) + f"--{boundary}--\r\n").encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        request = urllib.request.Request(self.xq.url("/xqueue/put_result/"), data=data, method="POST",
                                         headers=headers)
        with session.opener.open(request, timeout=5) as response:
            self.assertEqual(json.loads(response.read())["return_code"], 0)
        self.assertEqual(self.control.results()[0]["body"], GOOD_RESULT)


class RequeueAndLengthTest(StandinTestCase):
    def test_requeue_after_delay_with_new_key_and_old_key_refused(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        first = self.pull(session)
        self.assertEqual(session.get_queuelen(QUEUE).json(), {"return_code": 0, "content": 0})
        self.assertIsNone(session.pull(QUEUE), "served again before the processing delay")
        self.assertEqual(self.control.submission(sid)["state"], "in_progress")
        time.sleep(1.2)
        self.assertEqual(session.get_queuelen(QUEUE).json()["content"], 1)
        second = self.pull(session)
        self.assertEqual(second["header"]["submission_id"], sid)
        self.assertNotEqual(second["header"]["submission_key"], first["header"]["submission_key"])
        self.assertEqual(session.put_result(first["raw_header"], GOOD_RESULT).json(),
                         {"return_code": 1, "content": "Incorrect key for submission"})
        self.assertEqual(session.put_result(second["raw_header"], GOOD_RESULT).json()["return_code"], 0)
        state = self.control.submission(sid)
        self.assertEqual(state["pulled_count"], 2)
        keys = [first["header"]["submission_key"], second["header"]["submission_key"]]
        self.assertEqual(state["keys_issued"], keys)
        self.assertEqual((state["accepted_results"], state["rejected_put_results"]), (1, 1))

    def test_queue_length(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD, count=3)
        self.assertEqual(session.get_queuelen(QUEUE).body, b'{"return_code": 0, "content": 3}')
        self.pull(session)
        self.assertEqual(session.get_queuelen(QUEUE).json()["content"], 2)
        self.assertEqual(self.control.queues()[QUEUE],
                         {"waiting": 2, "in_progress": 1, "done": 0, "total": 3})
        self.assertEqual(session.get_queuelen("nope").json(),
                         {"return_code": 1, "content": f"Valid queue names are: {QUEUE}"})
        self.assertEqual(session.raw("GET", "/xqueue/get_queuelen/").json()["content"],
                         "'get_queuelen' must provide parameter 'queue_name'")


class FaultTest(StandinTestCase):
    def test_http_error_on_chosen_endpoint_for_n_requests(self):
        session = self.logged_in()
        self.control.faults(http_error={"get_submission": {"status": 500, "times": 2}})
        self.assertEqual([session.get_submission(QUEUE).status for _ in range(3)], [500, 500, 200])
        self.assertEqual(session.get_queuelen(QUEUE).status, 200)
        self.control.faults(http_error={"*": 502})
        self.assertEqual(session.get_queuelen(QUEUE).status, 502)
        self.control.faults(http_error=None)
        self.assertEqual(session.get_queuelen(QUEUE).status, 200)

    def test_delay(self):
        session = self.logged_in()
        self.control.faults(delay={"get_queuelen": 0.6})
        start = time.monotonic()
        self.assertEqual(session.get_queuelen(QUEUE).status, 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.6)
        start = time.monotonic()
        session.get_submission(QUEUE)
        self.assertLess(time.monotonic() - start, 0.5)

    def test_drop_put_result_stores_nothing(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        self.control.faults(drop={"put_result": {"times": 1}})
        with self.assertRaises((http.client.HTTPException, urllib.error.URLError, ConnectionError)):
            session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.control.submission(sid)["state"], "in_progress")
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)

    def test_lose_reply_stores_but_does_not_answer(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        self.control.faults(lose_reply={"put_result": True})
        with self.assertRaises((http.client.HTTPException, urllib.error.URLError, ConnectionError)):
            session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual(len(self.control.results()), 1)
        self.control.clear_faults()
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)
        self.assertEqual([r["duplicate"] for r in self.control.results()], [False, True])

    def test_incorrect_key(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        self.control.faults(incorrect_key={"times": 1})
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json(),
                         {"return_code": 1, "content": "Incorrect key for submission"})
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.control.submission(sid)["rejected_put_results"], 1)
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)

    def test_drop_sessions(self):
        session = self.logged_in()
        self.assertEqual(session.get_submission(QUEUE).status, 200)
        self.control.drop_sessions()
        self.assertEqual(session.get_submission(QUEUE).status, 302)
        self.assertEqual(session.login()["return_code"], 0)
        self.assertEqual(session.get_submission(QUEUE).status, 200)

    def test_refuse_connections_then_reopen_same_port(self):
        session = self.logged_in()
        keep_alive = http.client.HTTPConnection("127.0.0.1", self.xq.port, timeout=5)
        keep_alive.request("GET", "/xqueue/status/")
        self.assertEqual(keep_alive.getresponse().read(), b'{"return_code": 0, "content": "OK"}')
        self.control.refuse_connections(1.0)
        time.sleep(0.3)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.xq.port), timeout=2).close()
        with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
            keep_alive.request("GET", "/xqueue/status/")  # the open connection was closed too
            keep_alive.getresponse().read()
        keep_alive.close()
        deadline = time.monotonic() + 3
        while True:
            try:
                reply = session.get_queuelen(QUEUE)
                break
            except urllib.error.URLError:
                self.assertLess(time.monotonic(), deadline, "port never re-opened")
                time.sleep(0.05)
        self.assertEqual(reply.json()["return_code"], 0, "sessions survive an outage, as in the database")

    def test_invalid_switches_are_rejected_whole(self):
        for switches in ({"http_error": {"nowhere": 500}}, {"delay": {"login": "slow"}}, {"bogus": True},
                         {"refuse_connections": -1}, {"drop": {"login": True}, "http_error": {"login": 5}}):
            with self.subTest(switches), self.assertRaisesRegex(RuntimeError, "400"):
                self.control.faults(**switches)
        self.assertEqual(self.control.faults()["drop"], {}, "a rejected request applies nothing")


class ControlTest(StandinTestCase):
    def test_request_counters_and_poll_gaps(self):
        session = self.logged_in()
        for _ in range(3):
            session.get_submission(QUEUE)
            time.sleep(0.1)
        stats = self.control.requests()
        self.assertEqual(stats["counts"]["get_submission"], 3)
        self.assertEqual(stats["by_queue"]["get_submission"], {QUEUE: 3})
        self.assertEqual(stats["counts"]["login"], 2)  # the CSRF GET and the POST
        polls = stats["polls"][QUEUE]
        self.assertEqual(polls["count"], 3)
        self.assertGreaterEqual(polls["min_gap_after_empty"], 0.1)
        polled = [e["return_code"] for e in stats["log"] if e["endpoint"] == "get_submission"]
        self.assertEqual(polled, [1, 1, 1])

    def test_reset_and_batch_submit(self):
        session = self.logged_in()
        ids = self.control.submit(QUEUE, "a", PAYLOAD, count=2)
        self.assertEqual(len(ids), 2)
        self.control.faults(http_error={"get_submission": 500})
        self.control.reset()
        self.assertEqual(self.control.submissions(), [])
        self.assertEqual(self.control.requests()["counts"], {})
        self.assertEqual(self.control.faults()["http_error"], {})
        self.assertEqual(session.get_submission(QUEUE).json()["return_code"], 1, "sessions kept by default")
        self.assertGreater(self.control.submit(QUEUE, "b", PAYLOAD), max(ids), "ids never reused")
        with self.assertRaisesRegex(RuntimeError, "404"):
            self.control.submission(12345)

    def test_wait_for_results(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "a", PAYLOAD)
        with self.assertRaises(TimeoutError):
            self.control.wait_for_results(1, timeout=0.2)
        session.put_result(self.pull(session)["raw_header"], GOOD_RESULT)
        self.assertEqual(len(self.control.wait_for_results(1, timeout=2)), 1)


class CliTest(unittest.TestCase):
    def start(self, *extra):
        directory = tempfile.mkdtemp(prefix="standin-")
        port_file = os.path.join(directory, "port")
        process = subprocess.Popen(
            [sys.executable, os.path.join(TESTS_DIR, "xqueue_standin.py"), "--port", "0",
             "--port-file", port_file, "--user", "lms:password", "--processing-delay", "60",
             "--queue", QUEUE, *extra],
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        self.addCleanup(lambda: process.stderr.close())
        return process, port_file, StandinClient.from_port_file(port_file, wait=10)

    def test_port_file_login_and_sigterm(self):
        process, port_file, control = self.start()
        self.assertTrue(control.health()["ok"])
        session = GraderSession(control.base_url)
        self.assertEqual(session.login()["return_code"], 0)
        control.submit(QUEUE, "a", PAYLOAD)
        self.assertEqual(session.get_queuelen(QUEUE).json()["content"], 1)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=5), 0)
        self.assertFalse(os.path.exists(port_file), "port file removed on exit")
        self.assertIn("GET /xqueue/get_queuelen/", process.stderr.read())

    def test_no_csrf_unauth_status_and_sigint(self):
        process, _, control = self.start("--no-csrf", "--unauth-status", "401", "--quiet")
        session = GraderSession(control.base_url, csrf=False)
        self.assertEqual(session.get_submission(QUEUE).status, 401)
        self.assertEqual(session.login()["return_code"], 0)
        self.assertEqual(control.config()["processing_delay"], 60)
        process.send_signal(signal.SIGINT)
        self.assertEqual(process.wait(timeout=5), 0)


if __name__ == "__main__":
    unittest.main()
