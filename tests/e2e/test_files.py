"""File submissions (xqueue_files) end to end: the watcher binary fetches each uploaded file before grading
(from the XQueue stand-in, which hands out absolute URLs, or from a small recording file server here), the
Python image gives it to the grader, and every refusal reaches the student as a clear message.

The recording server (127.0.0.1, the stand-in's host, so the XQueue session's cookie goes to it too; and as
`localhost`, another host, listed in the queue's files.allowed_hosts) logs every request, which shows what
the watcher fetched and what it did not."""
import json
import os
import re
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import GRADER_IMAGE, HERE, WatcherTestCase

COURSE = os.path.join(HERE, "fixtures", "files_course")
TOTAL_RIGHT = "def total(text):\n    return sum(map(int, text.split()))\n"
TOTAL_WRONG = "def total(text):\n    return len(text.split())\n"
SQUARE_RIGHT = "def square(x):\n    return x * x\n"
SQUARE_WRONG = "def square(x):\n    return x + x\n"


class FileServer:
    """Serves `files` {path: bytes} (404 otherwise) on 127.0.0.1 and records every request."""

    def __init__(self):
        self.files = {}
        self.requests = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server.lock:
                    server.requests.append({"path": self.path, "host": self.headers.get("Host", ""),
                                            "cookie": self.headers.get("Cookie", ""),
                                            "authorization": self.headers.get("Authorization")})
                    body = server.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path, content):
        with self.lock:
            self.files[path] = content.encode() if isinstance(content, str) else content
        return path

    def requested(self, prefix):
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(prefix)]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FilesTest(WatcherTestCase):
    """Queue `files`: caps of 3 files, 1 KiB each, 2 KiB in all, `localhost:<file server>` allowed.
    Queue `based`: relative URLs resolve against the file server (files.base_url)."""

    @classmethod
    def setUpClass(cls):
        cls.server = FileServer()
        cls.QUEUES = {
            "files": {"grader_root": COURSE, "connections": 2, "image": GRADER_IMAGE,
                      "limits": {"timeout": "30s", "submission": "4Ki"},
                      "files": {"max_count": 3, "max_size": "1Ki", "max_total": "2Ki", "timeout": "5s",
                                "allowed_hosts": [f"localhost:{cls.server.port}"]}},
            "based": {"grader_root": COURSE, "connections": 1, "image": GRADER_IMAGE,
                      "files": {"base_url": f"http://127.0.0.1:{cls.server.port}"}},
        }
        try:
            super().setUpClass()
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.server.stop()

    def local(self, path, host="127.0.0.1"):
        return f"http://{host}:{self.server.port}{path}"

    def unique(self, name):
        return f"/{self.id().rsplit('.', 1)[-1]}/{name}"

    def grade(self, queue, grader, response, files):
        submission = self.xqueue.submit(queue, student_response=response, grader_payload={"grader": grader},
                                        files=files)
        return self.result_for(submission)["body"]

    def assert_refused(self, body, message):
        self.assertIs(body["correct"], False, body)
        self.assertEqual(body["score"], 0, body)
        self.assertIn("ERROR", body["msg"])
        self.assertIn(message, body["msg"])

    # --- graded with files ---------------------------------------------------------------------------
    def test_a_grader_reads_an_uploaded_file(self):
        files = {"data.txt": {"content": "1 2 3\n4\n"}}
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT, files)
        self.assertEqual(body["score"], 1, body)
        self.assertIn("total of the numbers in data.txt", body["msg"])
        self.assertIn("10", body["msg"])
        body = self.grade("files", "total/grader.py", TOTAL_WRONG, files)
        self.assertEqual(body["score"], 0, body)

    def test_a_lone_py_upload_is_graded_as_the_submission(self):
        self.assertEqual(self.grade("files", "square/grader.py", "", {"square.py": {"content": SQUARE_RIGHT}})
                         ["score"], 1)
        self.assertEqual(self.grade("files", "square/grader.py", "", {"square.py": {"content": SQUARE_WRONG}})
                         ["score"], 0)

    def test_a_file_from_an_allowed_host_and_the_session_cookie_only_for_the_xqueue_host(self):
        same_host = self.server.serve(self.unique("data.txt"), "5 5\n")
        listed = self.server.serve(self.unique("listed.txt"), "x")
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT,
                          {"data.txt": self.local(same_host), "listed.txt": self.local(listed, "localhost")})
        self.assertEqual(body["score"], 1, body)
        [to_xqueue_host] = self.server.requested(same_host)
        [to_other_host] = self.server.requested(listed)
        self.assertIn("sessionid=", to_xqueue_host["cookie"], "the XQueue session goes where its cookie is valid")
        self.assertEqual(to_other_host["cookie"], "", "and nowhere else")
        self.assertIsNone(to_other_host["authorization"])

    # --- relative URLs ---------------------------------------------------------------------------------
    def test_relative_urls_resolve_against_files_base_url(self):
        path = self.server.serve("/media/based/8d3c0a6e1f2b4c5d", "7 8\n")
        body = self.grade("based", "total/grader.py", TOTAL_RIGHT, {"data.txt": path})
        self.assertEqual(body["score"], 1, body)
        self.assertEqual(len(self.server.requested(path)), 1)

    def test_relative_urls_default_to_the_xqueue_server(self):
        # The stand-in stores a file given by content and serves it at /_standin/files/N/NAME: list that
        # path, relative, for a second submission, as the LMS lists /media/<queue>/<uuid>.
        stored = self.xqueue.submit("unused-queue", files={"data.txt": {"content": "20 22\n"}})
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT, {"data.txt": f"/_standin/files/{stored}/data.txt"})
        self.assertEqual(body["score"], 1, body)

    # --- refusals ------------------------------------------------------------------------------------
    def test_too_many_files_are_refused_and_none_is_fetched(self):
        files = {f"f{i}.txt": self.local(self.server.serve(self.unique(f"f{i}.txt"), "1")) for i in range(4)}
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT, files)
        self.assert_refused(body, "You submitted 4 files; this problem accepts at most 3 files.")
        self.assertEqual(self.server.requested(self.unique("")), [])

    def test_a_file_over_the_size_cap_is_refused(self):
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT, {"data.txt": {"content": "1 " * 1000}})
        self.assert_refused(body, "Your file &quot;data.txt&quot; is larger than the 1 KiB this problem accepts "
                                  "for each file.")
        files = {f"f{i}.txt": {"content": "1 " * 400} for i in range(3)}  # 800 bytes each, 2400 in all
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT, files)
        self.assert_refused(body, "Your files together are larger than the 2 KiB this problem accepts.")

    def test_a_missing_file_is_a_clear_message(self):
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT,
                          {"data.txt": self.xqueue.base_url + "/_standin/files/999999/data.txt"})
        self.assert_refused(body, "Your file &quot;data.txt&quot; could not be retrieved for grading. "
                                  "Please submit it again.")
        self.assertRegex(self.watcher.output(), r"file 'data.txt': file http://\S+/_standin/files/999999/data.txt: "
                                                r"HTTP 404")

    def test_an_unreachable_file_is_tried_again_then_answered(self):
        started = time.monotonic()
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT,
                          {"data.txt": f"http://127.0.0.1:{closed_port()}/data.txt"})
        self.assert_refused(body, "Your file &quot;data.txt&quot; could not be retrieved for grading just now. "
                                  "Please submit again in a few minutes.")
        self.assertGreaterEqual(time.monotonic() - started, 3.0, "tried again after 1 s and 2 s")
        self.assertIn("attempt 3 to fetch file 'data.txt' failed", self.watcher.output())

    def test_a_host_not_allowed_is_refused_before_anything_is_fetched(self):
        allowed = self.server.serve(self.unique("a.txt"), "1")
        body = self.grade("files", "total/grader.py", TOTAL_RIGHT,
                          {"a.txt": self.local(allowed), "data.txt": "http://files.example.org/data.txt"})
        self.assert_refused(body, "Your file &quot;data.txt&quot; could not be retrieved for grading "
                                  "(Staff debug: file location not allowed). Please contact the course staff.")
        self.assertEqual(self.server.requested(allowed), [], "no file is fetched once one is refused")
        self.assertIn("is on host files.example.org, which is neither the base URL's", self.watcher.output())

    def test_nothing_is_fetched_for_a_submission_refused_anyway(self):
        unknown_grader = self.local(self.server.serve(self.unique("a.txt"), "1"))
        body = self.grade("files", "nope/grader.py", TOTAL_RIGHT, {"data.txt": unknown_grader})
        self.assert_refused(body, "Staff debug: grader not found")
        too_large = self.local(self.server.serve(self.unique("b.txt"), "1"))
        body = self.grade("files", "total/grader.py", "#" * 5000, {"data.txt": too_large})
        self.assert_refused(body, "Your submission is larger than the 4 KiB this problem accepts.")
        self.assertEqual(self.server.requested(self.unique("")), [])
        graded = re.findall(r"verdict=(\w+)", self.watcher.output())
        self.assertIn("grader_not_found", graded)
        self.assertIn("submission_too_large", graded)


class LmsRelativeUrlsTest(WatcherTestCase):
    """The LMS lists files as relative /media/<queue>/<uuid> URLs; the watcher resolves them against the
    queue's server URL (the LMS root)."""
    STANDIN_MODE = "lms"
    QUEUES = {"files": {"grader_root": COURSE, "connections": 1, "image": GRADER_IMAGE, "points": 1}}

    def test_relative_media_urls_from_the_lms(self):
        submission = self.xqueue.submit("files", student_response=TOTAL_RIGHT,
                                        grader_payload={"grader": "total/grader.py"},
                                        files={"data.txt": {"content": "1 2\n"}})
        listed = json.loads(self.xqueue.submission(submission)["xqueue_files"])
        self.assertTrue(listed["data.txt"].startswith("/media/files/"), listed)
        body = self.result_for(submission)["body"]
        self.assertEqual(body["score"], 1, body)

    def test_a_media_file_the_lms_no_longer_has_is_a_clear_message(self):
        submission = self.xqueue.submit("files", student_response=TOTAL_RIGHT,
                                        grader_payload={"grader": "total/grader.py"},
                                        files={"data.txt": {"content": "1 2\n", "http_error": 404}})
        body = self.result_for(submission)["body"]
        self.assertIs(body["correct"], False, body)
        self.assertEqual(body["score"], 0, body)
        self.assertIn("Your file &quot;data.txt&quot; could not be retrieved for grading. Please submit it again.",
                      body["msg"])
        self.assertRegex(self.watcher.output(), r"file 'data.txt': file http://\S+/media/files/\S+: HTTP 404")


if __name__ == "__main__":
    unittest.main()
