"""The XQueue stand-in behaves like openedx/xqueue, and in LMS mode like the LMS's XQueue API
(edx-submissions), over real HTTP (urllib with a cookie jar).

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

    def test_file_options_make_a_fetch_fail_or_lag(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "", PAYLOAD, files={"gone.py": {"content": "x", "http_error": 404},
                                                       "slow.py": {"content": "y", "delay": 0.4}})
        files = self.pull(session)["files"]
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(files["gone.py"], timeout=5)
        self.assertEqual(caught.exception.code, 404)
        caught.exception.close()
        start = time.monotonic()
        with urllib.request.urlopen(files["slow.py"], timeout=5) as response:
            self.assertEqual(response.read(), b"y")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)

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

    def test_a_held_put_result_is_completed_after_its_client_gave_up(self):
        # As a real server: the request is worked on after the client timed out and posted again, so
        # the same result is accepted twice (the second flagged duplicate); "finished" marks it done.
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        pulled = self.pull(session)
        self.control.faults(delay={"put_result": {"seconds": 1.0, "times": 1}})
        impatient = GraderSession(self.xq.base_url, timeout=0.3)
        impatient.login()
        with self.assertRaises(OSError):
            impatient.put_result(pulled["raw_header"], GOOD_RESULT)
        [held] = [e for e in self.control.requests()["log"] if e["endpoint"] == "put_result"]
        self.assertIsNone(held["finished"], "the held post is still being handled")
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).json()["return_code"], 0)
        self.control.wait_for(lambda: all(e["finished"] for e in self.control.requests()["log"]
                                          if e["endpoint"] == "put_result"), timeout=10,
                              what="the held put_result finished")
        results = self.control.results()
        self.assertEqual([(r["submission_id"], r["duplicate"]) for r in results], [(sid, False), (sid, True)])
        self.assertEqual(results[0]["xqueue_body"], results[1]["xqueue_body"])
        self.assertEqual(self.control.submission(sid)["accepted_results"], 2)

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
        # The stand-in closes its port just after answering: wait for that, not for a fixed time.
        deadline = time.monotonic() + 3
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.xq.port), timeout=2).close()
            except ConnectionRefusedError:
                break
            except ConnectionResetError:
                pass  # queued on the listening socket as it closed: closing, not closed yet
            self.assertLess(time.monotonic(), deadline, "the port was never closed")
            time.sleep(0.01)
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


# ----------------------------------------------------------------------------------------------
# LMS mode: the LMS's XQueue API (openedx/edx-submissions XQueueViewSet)
# ----------------------------------------------------------------------------------------------
UUID4 = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
NOT_PERMITTED = {"detail": "You do not have permission to perform this action."}


class LmsTestCase(StandinTestCase):
    """A fresh LMS-mode stand-in per test; "outsider" can log in but is not in the group xqueue."""

    config = StandinConfig(mode="lms", queues=[QUEUE], processing_delay=1.0,
                           users={"lms": "password", "other": "s3cret", "outsider": "pw"},
                           not_in_xqueue_group=["outsider"])

    def pulled_submission(self, session: GraderSession, **submit) -> tuple:
        sid = self.control.submit(QUEUE, "a", PAYLOAD, **submit)
        pulled = self.pull(session)
        self.assertEqual(pulled["header"]["submission_id"], sid)
        return sid, pulled

    def outcomes(self, sid: int) -> list:
        return [p["outcome"] for p in self.control.submission(sid)["put_results"]]


class LmsLoginTest(LmsTestCase):
    def test_get_login_sets_csrf_cookie_and_keeps_it(self):
        reply = self.grader.raw("GET", "/xqueue/login/")
        self.assertEqual((reply.status, reply.body), (200, b'{"return_code":0,"content":""}'))
        self.assertEqual(reply.headers["Content-Type"], "application/json")
        token = self.grader.cookie("csrftoken")
        self.assertRegex(token, "^[A-Za-z0-9]{32}$")
        self.assertIsNone(self.grader.cookie("sessionid"))
        self.grader.raw("GET", "/xqueue/login/")
        self.assertEqual(self.grader.cookie("csrftoken"), token)

    def test_login_needs_no_csrf_token_and_rotates_it(self):
        self.grader.raw("GET", "/xqueue/login/")
        before = self.grader.cookie("csrftoken")
        reply = self.grader.raw("POST", "/xqueue/login/", form={"username": "lms", "password": "password"})
        self.assertEqual((reply.status, reply.body), (200, b'{"return_code":0,"content":"Logged in"}'))
        self.assertTrue(self.grader.cookie("sessionid"))
        self.assertRegex(self.grader.cookie("csrftoken"), "^[A-Za-z0-9]{32}$")
        self.assertNotEqual(self.grader.cookie("csrftoken"), before, "login rotates the CSRF token")
        fresh = GraderSession(self.xq.base_url, csrf=False)  # never fetched a cookie at all
        self.assertEqual(fresh.login(), {"return_code": 0, "content": "Logged in"})

    def test_put_result_needs_the_token_as_rotated_by_the_login(self):
        self.grader.raw("GET", "/xqueue/login/")
        pre_login = self.grader.cookie("csrftoken")
        self.grader.raw("POST", "/xqueue/login/", form={"username": "lms", "password": "password"})
        sid, pulled = self.pulled_submission(self.grader)
        referer = self.xq.url("/xqueue/login/")
        cases = {
            "pre-login token": ({"X-CSRFToken": pre_login},
                                "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect."),
            "no token": ({"X-CSRFToken": None}, "CSRF Failed: CSRF token missing."),
            "short token": ({"X-CSRFToken": "abc"},
                            "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header has incorrect "
                            "length."),
            "no referer": ({"Referer": None}, "CSRF Failed: Referer checking failed - no Referer."),
            "foreign referer": ({"Referer": "http://evil.example/x"},
                                "CSRF Failed: Referer checking failed - http://evil.example/x does not match "
                                "any trusted origins."),
            "foreign origin": ({"Origin": "http://evil.example", "Referer": referer},
                               "CSRF Failed: Origin checking failed - http://evil.example does not match any "
                               "trusted origins."),
        }
        for name, (headers, detail) in cases.items():
            with self.subTest(name):
                reply = self.grader.put_result(pulled["raw_header"], GOOD_RESULT, headers=headers)
                self.assertEqual(reply.status, 403)
                self.assertEqual(reply.json(), {"detail": detail})
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.outcomes(sid), [], "a CSRF failure never reaches the view")
        reply = self.grader.put_result(pulled["raw_header"], GOOD_RESULT)  # the rotated cookie's token
        self.assertEqual((reply.status, reply.body), (200, b'{"return_code":0,"content":""}'))

    def test_a_login_over_a_live_session_is_csrf_checked(self):
        session = self.logged_in()
        form = {"username": "lms", "password": "password"}
        referer = {"Referer": self.xq.url("/xqueue/login/")}
        reply = session.raw("POST", "/xqueue/login/", form=form, headers=referer)
        self.assertEqual((reply.status, reply.json()), (403, {"detail": "CSRF Failed: CSRF token missing."}))
        reply = session.raw("POST", "/xqueue/login/", form=form, headers=session.csrf_headers())
        self.assertEqual(reply.json(), {"return_code": 0, "content": "Logged in"})

    def test_csrf_off_accepts_put_result_without_token(self):
        session = self.logged_in()
        _, pulled = self.pulled_submission(session)
        bare = {"X-CSRFToken": None, "Referer": None}
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT, headers=bare).status, 403)
        self.control.config(csrf=False)
        reply = session.put_result(pulled["raw_header"], GOOD_RESULT, headers=bare)
        self.assertEqual(reply.json(), {"return_code": 0, "content": ""})

    def test_wrong_credentials_401_and_missing_fields_400(self):
        for username, password in (("lms", "nope"), ("ghost", "password")):
            with self.subTest(username):
                session = GraderSession(self.xq.base_url, username, password)
                reply = session.login_reply()
                self.assertEqual((reply.status, reply.body),
                                 (401, b'{"return_code":1,"content":"Incorrect login credentials"}'))
                self.assertIsNone(session.cookie("sessionid"))
        reply = self.grader.raw("POST", "/xqueue/login/", form={"username": "lms"})
        self.assertEqual((reply.status, reply.json()),
                         (400, {"return_code": 1, "content": "Insufficient login info"}))


class LmsAuthTest(LmsTestCase):
    def test_logged_out_calls_are_403_without_redirect(self):
        self.control.config(unauth_status=302)  # ignored in LMS mode
        for path, method in (("/xqueue/get_submission/", "GET"), ("/xqueue/put_result/", "POST"),
                             ("/xqueue/logout/", "POST"), ("/xqueue/status/", "GET")):
            with self.subTest(path):
                reply = self.grader.raw(method, path, query={"queue_name": QUEUE},
                                        form={} if method == "POST" else None)
                self.assertEqual((reply.status, reply.json()), (403, NOT_AUTHENTICATED))
                self.assertIsNone(reply.headers["Location"])

    def test_user_outside_the_xqueue_group_logs_in_but_is_refused(self):
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        outsider = self.logged_in("outsider", "pw")
        self.assertEqual((outsider.get_submission(QUEUE).status, outsider.get_submission(QUEUE).json()),
                         (403, NOT_PERMITTED))
        header = json.dumps({"submission_id": sid, "submission_key": "k"})
        reply = outsider.put_result(header, GOOD_RESULT)
        self.assertEqual((reply.status, reply.json()), (403, NOT_PERMITTED))
        state = self.control.submission(sid)
        self.assertEqual((state["status"], state["pulled_count"]), ("pending", 0))
        self.control.config(not_in_xqueue_group=[])  # membership is looked up on every request
        self.assertEqual(self.pull(outsider)["header"]["submission_id"], sid)

    def test_missing_trailing_slash_redirects_and_is_not_counted(self):
        session = self.logged_in()
        reply = session.raw("GET", "/xqueue/get_submission", query={"queue_name": QUEUE})
        self.assertEqual((reply.status, reply.headers["Location"]),
                         (301, f"/xqueue/get_submission/?queue_name={QUEUE}"))
        for path in ("/xqueue/put_result", "/xqueue/login"):
            with self.subTest(path):
                reply = session.raw("POST", path, form={"username": "lms", "password": "password"})
                self.assertEqual((reply.status, reply.headers["Location"]), (301, path + "/"))
        counts = self.control.requests()["counts"]
        self.assertNotIn("get_submission", counts)
        self.assertNotIn("put_result", counts)

    def test_no_get_queuelen_no_submit_and_status_is_post_only(self):
        session = self.logged_in()
        self.assertEqual(session.get_queuelen(QUEUE).status, 404)
        self.assertEqual(session.raw("GET", "/xqueue/get_queuelen", query={"queue_name": QUEUE}).status, 404,
                         "no redirect: the slashed path does not exist either")
        self.assertEqual(session.raw("POST", "/xqueue/submit/", form={}).status, 404)
        reply = session.raw("GET", "/xqueue/status/")
        self.assertEqual((reply.status, reply.json()), (405, {"detail": 'Method "GET" not allowed.'}))
        self.assertEqual(reply.headers["Allow"], "POST, OPTIONS")
        reply = session.raw("POST", "/xqueue/status/", form={}, headers=session.csrf_headers())
        self.assertEqual((reply.status, reply.body), (200, b"return_codecontent"))
        stats = self.control.requests()
        self.assertEqual(stats["counts"]["get_queuelen"], 2)
        self.assertEqual(stats["by_queue"]["get_queuelen"], {QUEUE: 2})
        self.assertEqual(stats["counts"]["submit"], 1)
        by_endpoint = {}
        for entry in stats["log"]:
            by_endpoint.setdefault(entry["endpoint"], []).append(entry["status"])
        self.assertEqual(by_endpoint["get_queuelen"], [404, 404])
        self.assertEqual(by_endpoint["status"], [405, 200])

    def test_logout_is_post_only_and_ends_the_session(self):
        session = self.logged_in()
        self.assertEqual(session.raw("GET", "/xqueue/logout/").status, 405)
        reply = session.raw("POST", "/xqueue/logout/", form={}, headers=session.csrf_headers())
        self.assertEqual(reply.body, b'{"return_code":0,"content":"Goodbye"}')
        self.assertEqual(session.get_submission(QUEUE).json(), NOT_AUTHENTICATED)

    def test_drop_sessions_means_403_until_the_next_login(self):
        session = self.logged_in()
        self.control.drop_sessions()
        self.assertEqual((session.get_submission(QUEUE).status, session.get_submission(QUEUE).json()),
                         (403, NOT_AUTHENTICATED))
        self.assertEqual(session.login()["return_code"], 0)
        self.assertEqual(session.get_submission(QUEUE).status, 200)


class LmsGetSubmissionTest(LmsTestCase):
    def test_body_is_rebuilt_and_the_key_is_a_uuid4(self):
        session = self.logged_in()
        self.control.submit("another-queue", "x", PAYLOAD)  # so that our id is not 1 (random_seed is 1)
        before = int(time.time())
        sid = self.control.submit(QUEUE, "print('é')\n", dict(PAYLOAD, lang="python", hide_output=True),
                                  student_info={"anonymous_student_id": "abc", "random_seed": 7,
                                                "submission_time": "20240101000000"})
        after = int(time.time())
        reply = session.get_submission(QUEUE)
        self.assertEqual(reply.status, 200)
        self.assertTrue(reply.body.startswith(b'{"return_code":0,"content":"'), reply.body[:40])
        content = json.loads(reply.json()["content"])
        self.assertEqual(set(content), {"xqueue_header", "xqueue_body", "xqueue_files"})
        header = json.loads(content["xqueue_header"])
        self.assertEqual(header["submission_id"], sid)
        self.assertRegex(header["submission_key"], UUID4)
        body = json.loads(content["xqueue_body"])
        self.assertEqual(list(body), ["grader_payload", "student_info", "student_response"])
        self.assertEqual(body["grader_payload"], '{"grader": "ps01/hello/grader.py"}')
        info = json.loads(body["student_info"])
        self.assertEqual(list(info), ["anonymous_student_id", "submission_time", "random_seed"])
        self.assertEqual((info["anonymous_student_id"], info["random_seed"]), ("abc", 1))
        self.assertRegex(info["submission_time"], "^[0-9]+$")
        self.assertTrue(before <= int(info["submission_time"]) <= after, info["submission_time"])
        self.assertEqual(body["student_response"], "print('é')\n")
        self.assertEqual(content["xqueue_files"], "{}")

    def test_empty_unknown_and_missing_queue(self):
        session = self.logged_in()
        reply = session.get_submission(QUEUE)
        self.assertEqual((reply.status, reply.body),
                         (200, ('{"return_code":1,"content":"Queue \'%s\' is empty"}' % QUEUE).encode()))
        reply = session.get_submission("nope")
        self.assertEqual((reply.status, reply.json()),
                         (200, {"return_code": 1, "content": "Queue 'nope' is empty"}))
        for query in (None, {"queue_name": ""}):
            with self.subTest(query):
                reply = session.raw("GET", "/xqueue/get_submission/", query=query)
                self.assertEqual((reply.status, reply.json()),
                                 (400, {"return_code": 1,
                                        "content": "'get_submission' must provide parameter 'queue_name'"}))

    def test_stale_pulled_submission_is_served_on_every_poll_with_the_same_key(self):
        session = self.logged_in()
        sid, first = self.pulled_submission(session)
        pulled_at = time.monotonic()
        self.assertIsNone(session.pull(QUEUE), "served again before the processing delay")
        self.assertEqual(self.control.submission(sid)["state"], "in_progress")
        second = self.control.wait_for(lambda: session.pull(QUEUE), timeout=5, what="stale re-serve")
        self.assertGreaterEqual(time.monotonic() - pulled_at, 1.0)
        third = self.pull(session)
        key = first["header"]["submission_key"]
        self.assertEqual([second["header"]["submission_key"], third["header"]["submission_key"]], [key, key])
        state = self.control.submission(sid)
        self.assertEqual((state["status"], state["pulled_count"], state["keys_issued"]), ("pulled", 3, [key]))
        self.assertEqual(session.put_result(first["raw_header"], GOOD_RESULT).status, 200)
        self.assertEqual(self.control.submission(sid)["status"], "graded")
        self.assertIsNone(session.pull(QUEUE))

    def test_files_are_relative_media_urls_served_without_login(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "", PAYLOAD, files={"answer.py": {"content": "print(42)\n"},
                                                       "remote.txt": "http://files.example/remote.txt"})
        files = self.pull(session)["files"]
        self.assertRegex(files["answer.py"], f"^/media/{QUEUE}/" + UUID4[1:])
        self.assertEqual(files["remote.txt"], "http://files.example/remote.txt")
        anonymous = GraderSession(self.xq.base_url)
        reply = anonymous.raw("GET", files["answer.py"])
        self.assertEqual((reply.status, reply.body), (200, b"print(42)\n"))
        unknown = f"/media/{QUEUE}/00000000-0000-4000-8000-000000000000"
        self.assertEqual(anonymous.raw("GET", unknown).status, 404)
        stats = self.control.requests()
        self.assertEqual(stats["counts"]["media"], 2)
        self.assertEqual(stats["by_queue"]["media"], {QUEUE: 2})

    def test_absolute_file_urls_point_at_the_standin(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "", PAYLOAD, files={"a.txt": {"content": "A"}}, files_absolute=True)
        url = self.pull(session)["files"]["a.txt"]
        self.assertRegex(url, f"^{self.xq.base_url}/media/{QUEUE}/" + UUID4[1:])
        with urllib.request.urlopen(url, timeout=5) as response:
            self.assertEqual(response.read(), b"A")

    def test_file_fetch_failures(self):
        session = self.logged_in()
        self.control.submit(QUEUE, "", PAYLOAD, files={"gone.py": {"content": "x", "http_error": 404},
                                                       "slow.py": {"content": "y", "delay": 0.5},
                                                       "ok.py": {"content": "z"}})
        files = self.pull(session)["files"]
        self.assertEqual(session.raw("GET", files["gone.py"]).status, 404)
        start = time.monotonic()
        self.assertEqual(session.raw("GET", files["slow.py"]).body, b"y")
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        self.control.faults(http_error={"media": {"status": 503, "times": 1}})
        self.assertEqual([session.raw("GET", files["ok.py"]).status for _ in range(2)], [503, 200])
        statuses = [e["status"] for e in self.control.requests()["log"] if e["endpoint"] == "media"]
        self.assertEqual(statuses, [404, 200, 503, 200])


class LmsPutResultTest(LmsTestCase):
    def test_integer_score_is_recorded(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        reply = session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual((reply.status, reply.body), (200, b'{"return_code":0,"content":""}'))
        [result] = self.control.results()
        self.assertEqual((result["submission_id"], result["points_earned"], result["points_possible"]),
                         (sid, 1, 1))
        self.assertEqual(result["body"], GOOD_RESULT)
        self.assertEqual(result["xqueue_body"], json.dumps(GOOD_RESULT))
        state = self.control.submission(sid)
        self.assertEqual((state["status"], state["state"], state["accepted_results"]), ("graded", "done", 1))

    def test_repost_after_a_lost_reply_is_500_and_the_first_counts(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        self.control.faults(lose_reply={"put_result": {"times": 1}})
        with self.assertRaises((http.client.HTTPException, urllib.error.URLError, ConnectionError)):
            session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).status, 500)
        self.assertEqual(len(self.control.results()), 1)
        state = self.control.submission(sid)
        self.assertEqual((state["status"], state["accepted_results"]), ("graded", 1))
        self.assertEqual([p["status"] for p in state["put_results"]], [200, 500])

    def test_error_codes(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        unpulled = self.control.submit(QUEUE, "b", PAYLOAD)
        incorrect_format = (400, {"return_code": 1, "content": "Incorrect reply format"})
        cases = [
            ("wrong key", json.dumps({"submission_id": sid, "submission_key": "0" * 32}), GOOD_RESULT,
             (403, {"return_code": 1, "content": "Incorrect key for submission"})),
            ("never pulled", json.dumps({"submission_id": unpulled, "submission_key": ""}), GOOD_RESULT,
             (403, {"return_code": 1, "content": "Incorrect key for submission"})),
            ("unknown", json.dumps({"submission_id": 999, "submission_key": "k"}), GOOD_RESULT,
             (404, {"return_code": 1, "content": "Submission does not exist"})),
            ("header not json", "not json", GOOD_RESULT, incorrect_format),
            ("header a list", "[1, 2]", GOOD_RESULT, incorrect_format),
            ("header without key", json.dumps({"submission_id": sid}), GOOD_RESULT, incorrect_format),
            ("body not json", pulled["raw_header"], "<html>not json", incorrect_format),
        ]
        for name, header, body, expected in cases:
            with self.subTest(name):
                reply = session.put_result(header, body)
                self.assertEqual((reply.status, reply.json()), expected)
        reply = session.raw("POST", "/xqueue/put_result/", form={"xqueue_header": pulled["raw_header"]},
                            headers=session.csrf_headers())
        self.assertEqual((reply.status, reply.json()), incorrect_format)
        self.assertEqual(session.put_result(pulled["raw_header"], "[1]").status, 500)
        non_integer = json.dumps({"submission_id": "abc", "submission_key": "k"})
        self.assertEqual(session.put_result(non_integer, GOOD_RESULT).status, 500)
        self.assertEqual(session.raw("GET", "/xqueue/put_result/").status, 405)
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.control.submission(sid)["rejected_put_results"], 1)
        self.assertEqual(self.control.submission(sid)["status"], "pulled")
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).status, 200)

    def test_fractional_score_is_not_recorded_retried_then_failed_after_five(self):
        session = self.logged_in()
        sid = self.control.submit(QUEUE, "a", PAYLOAD)
        keys = []
        for attempt in range(1, 6):
            item = self.pull(session)  # a retry is served again at once
            keys.append(item["header"]["submission_key"])
            reply = session.put_result(item["raw_header"], {"correct": False, "score": 0.333, "msg": "1/3"})
            self.assertEqual((reply.status, reply.body), (200, b'{"return_code":0,"content":""}'))
            state = self.control.submission(sid)
            self.assertEqual((state["status"], state["num_failures"]),
                             ("retry" if attempt < 5 else "failed", attempt))
        self.assertIsNone(session.pull(QUEUE), "a failed submission is never served again")
        self.assertEqual(self.control.results(), [])
        state = self.control.submission(sid)
        self.assertEqual((state["pulled_count"], state["keys_issued"], state["state"]), (5, keys, "failed"))
        self.assertEqual(len(set(keys)), 5)
        self.assertEqual(self.outcomes(sid), ["retry"] * 4 + ["failed"])
        self.assertEqual(self.control.queues()[QUEUE]["failed"], 1)

    def test_points_out_of_points_possible(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session, points_possible=3)
        self.assertEqual(self.control.submission(sid)["points_possible"], 3)
        self.assertEqual(session.put_result(pulled["raw_header"], dict(GOOD_RESULT, score=2.0)).status, 200)
        [result] = self.control.results()
        self.assertEqual((result["points_earned"], result["points_possible"]), (2, 3))
        other = self.control.submit(QUEUE, "b", PAYLOAD)
        for score in (True, -1, None):
            with self.subTest(score):
                item = self.pull(session)
                reply = session.put_result(item["raw_header"], dict(GOOD_RESULT, score=score))
                self.assertEqual(reply.status, 200)
        self.assertEqual(self.control.submission(other)["status"], "retry")
        item = self.pull(session)
        self.assertEqual(session.put_result(item["raw_header"], dict(GOOD_RESULT, score=0)).status, 200)
        self.assertEqual([r["points_earned"] for r in self.control.results()], [2, 0])
        self.assertEqual(self.outcomes(other), ["retry", "retry", "retry", "graded"])

    def test_old_key_of_a_retry_submission(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        fractional = dict(GOOD_RESULT, score=0.5)
        self.assertEqual(session.put_result(pulled["raw_header"], fractional).status, 200)
        self.assertEqual(session.put_result(pulled["raw_header"], fractional).status, 500)
        self.assertEqual(self.control.submission(sid)["status"], "retry")
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).status, 200)
        self.assertEqual(self.control.submission(sid)["status"], "graded")
        self.assertEqual(len(self.control.results()), 1)

    def test_conflict_is_409_and_transient(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        self.control.faults(conflict={"times": 1})
        reply = session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual((reply.status, reply.body),
                         (409, b'{"return_code":1,"content":"Submission is currently being processed"}'))
        self.assertEqual(self.control.results(), [])
        self.assertEqual(self.control.submission(sid)["status"], "pulled")
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).status, 200)
        self.assertEqual(self.outcomes(sid), ["conflict", "graded"])

    def test_incorrect_key_fault_is_403(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        self.control.faults(incorrect_key={"times": 1})
        reply = session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.assertEqual((reply.status, reply.json()),
                         (403, {"return_code": 1, "content": "Incorrect key for submission"}))
        self.assertEqual(session.put_result(pulled["raw_header"], GOOD_RESULT).status, 200)
        self.assertEqual(self.outcomes(sid), ["incorrect_key", "graded"])

    def test_json_request_body(self):
        session = self.logged_in()
        sid, pulled = self.pulled_submission(session)
        data = json.dumps({"xqueue_header": pulled["raw_header"], "xqueue_body": json.dumps(GOOD_RESULT)})
        headers = dict(session.csrf_headers(), **{"Content-Type": "application/json"})
        request = urllib.request.Request(self.xq.url("/xqueue/put_result/"), data=data.encode(),
                                         method="POST", headers=headers)
        with session.opener.open(request, timeout=5) as response:
            self.assertEqual(response.read(), b'{"return_code":0,"content":""}')
        self.assertEqual(self.control.submission(sid)["status"], "graded")


class LmsControlTest(LmsTestCase):
    def test_counters_and_faults_work_as_in_xqueue_mode(self):
        session = self.logged_in()
        self.control.faults(http_error={"get_submission": {"status": 502, "times": 1}})
        self.assertEqual([session.get_submission(QUEUE).status for _ in range(3)], [502, 200, 200])
        self.control.faults(delay={"get_submission": 0.4})
        start = time.monotonic()
        session.get_submission(QUEUE)
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.control.clear_faults()
        _, pulled = self.pulled_submission(session)
        session.put_result(pulled["raw_header"], GOOD_RESULT)
        self.control.faults(drop={"put_result": {"times": 1}})
        with self.assertRaises((http.client.HTTPException, urllib.error.URLError, ConnectionError)):
            session.put_result(pulled["raw_header"], GOOD_RESULT)
        stats = self.control.requests()
        self.assertEqual(stats["counts"]["login"], 2)  # the CSRF GET and the POST
        self.assertEqual(stats["counts"]["get_submission"], 5)
        self.assertEqual(stats["counts"]["put_result"], 2)
        self.assertEqual(stats["polls"][QUEUE]["count"], 5)
        polled = [(e["status"], e["return_code"]) for e in stats["log"] if e["endpoint"] == "get_submission"]
        self.assertEqual(polled, [(502, None), (200, 1), (200, 1), (200, 1), (200, 0)])
        self.assertEqual([e["status"] for e in stats["log"] if e["endpoint"] == "put_result"], [200, None])

    def test_mode_switch_and_default_delays(self):
        self.assertEqual(XQueueStandin(StandinConfig(mode="lms")).config.processing_delay, 300)
        self.assertEqual(XQueueStandin(StandinConfig()).config.processing_delay, 60)
        with self.assertRaises(ValueError):
            XQueueStandin(StandinConfig(mode="edx"))
        xq = XQueueStandin(StandinConfig(queues=[QUEUE])).start()
        self.addCleanup(xq.stop)
        control = xq.client()
        session = GraderSession(xq.base_url)
        self.assertEqual(session.login()["return_code"], 0)
        control.submit(QUEUE, "a", PAYLOAD)
        with self.assertRaisesRegex(RuntimeError, "400.*empty stand-in"):
            control.config(mode="lms")
        control.reset()
        config = control.config(mode="lms")
        self.assertEqual((config["mode"], config["processing_delay"]), ("lms", 300))
        self.assertEqual(session.get_submission(QUEUE).json(), NOT_AUTHENTICATED, "sessions are dropped")
        self.assertEqual(session.login()["return_code"], 0)
        self.assertEqual(session.get_queuelen(QUEUE).status, 404)
        self.assertEqual(control.config(mode="xqueue")["processing_delay"], 60)
        control.config(processing_delay=5)
        self.assertEqual(control.config(mode="lms")["processing_delay"], 5, "an explicit delay stays")
        with self.assertRaisesRegex(RuntimeError, "400"):
            control.config(mode="bogus")

    def test_lms_submit_rejects_what_the_lms_cannot_queue(self):
        for submit in ({"xqueue_body": "{}"}, {"grader_payload": "not json"}, {"points_possible": -1},
                       {"files": {"a": {"content": "x", "http_error": 99}}}):
            with self.subTest(submit), self.assertRaisesRegex(RuntimeError, "400"):
                self.control.submit(QUEUE, **submit)
        self.assertEqual(self.control.submissions(), [])


class CliTest(unittest.TestCase):
    def start(self, *extra):
        directory = tempfile.mkdtemp(prefix="standin-")
        port_file = os.path.join(directory, "port")
        process = subprocess.Popen(
            [sys.executable, os.path.join(TESTS_DIR, "xqueue_standin"), "--port", "0",
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

    def test_lms_mode(self):
        process, _, control = self.start("--mode", "lms", "--user", "outsider:pw", "--not-in-xqueue-group",
                                         "outsider", "--quiet")
        config = control.config()
        self.assertEqual((config["mode"], config["not_in_xqueue_group"]), ("lms", ["outsider"]))
        session = GraderSession(control.base_url)
        self.assertEqual(session.login()["return_code"], 0)
        self.assertEqual(session.get_queuelen(QUEUE).status, 404)
        self.assertEqual(session.get_submission(QUEUE).json(), {"return_code": 1,
                                                                "content": f"Queue '{QUEUE}' is empty"})
        outsider = GraderSession(control.base_url, "outsider", "pw")
        self.assertEqual(outsider.login()["return_code"], 0)
        self.assertEqual(outsider.get_submission(QUEUE).status, 403)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=5), 0)


if __name__ == "__main__":
    unittest.main()
