"""Clients for tests, the demo and the benchmark: StandinClient drives the control API (submit,
results, submissions, faults, config, waits); GraderSession is a pull grader's side of XQueue
(login with the CSRF handshake, get_submission, get_queuelen, put_result) over urllib with a
cookie jar, returning HttpReply. Imports nothing else from the package: usable against a stand-in
in another process.
"""

import base64
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import List, Optional

JSON = "application/json"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class HttpReply:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class StandinClient:
    """Drives the control API over HTTP."""

    def __init__(self, base_url: str, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_port_file(cls, path: str, host: str = "127.0.0.1", wait: float = 10) -> "StandinClient":
        deadline = time.monotonic() + wait
        while True:
            try:
                with open(path) as handle:
                    port = int(handle.read().strip())
                return cls(f"http://{host}:{port}")
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no port in {path} after {wait}s")
                time.sleep(0.05)

    def _call(self, method: str, path: str, payload: Optional[dict] = None, query: Optional[dict] = None):
        url = f"{self.base_url}/_standin/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": JSON} if data is not None else {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            raise RuntimeError(f"stand-in control {method} {path} failed: {err.code} {detail}") from None

    def health(self) -> dict:
        return self._call("GET", "health")

    def submit(self, queue: str, student_response: str = "", grader_payload=None, student_info=None,
               xqueue_body=None, files=None, student_info_as_object: bool = False,
               count: Optional[int] = None, points_possible: Optional[int] = None,
               files_absolute: Optional[bool] = None):
        """Queue a submission as the LMS would; returns its id (a list of ids when count is given)."""
        payload = {"queue": queue, "student_response": student_response,
                   "grader_payload": grader_payload if grader_payload is not None else "",
                   "student_info_as_object": student_info_as_object}
        for key, value in (("student_info", student_info), ("xqueue_body", xqueue_body), ("files", files),
                           ("count", count), ("points_possible", points_possible),
                           ("files_absolute", files_absolute)):
            if value is not None:
                payload[key] = value
        reply = self._call("POST", "submit", payload)
        return reply["submission_ids"] if count is not None else reply["submission_id"]

    def results(self, queue: Optional[str] = None) -> List[dict]:
        return self._call("GET", "results", query={"queue": queue} if queue else None)["results"]

    def rejected(self) -> List[dict]:
        return self._call("GET", "results")["rejected"]

    def wait_for(self, predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
        """Poll predicate() until it returns something truthy; return it, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"stand-in: {what} not reached within {timeout}s")
            time.sleep(interval)

    def wait_for_results(self, n: int, timeout: float = 30, queue: Optional[str] = None) -> List[dict]:
        last = []

        def enough():
            last[:] = self.results(queue)
            return list(last) if len(last) >= n else None

        try:
            return self.wait_for(enough, timeout, what=f"{n} results")
        except TimeoutError:
            raise TimeoutError(f"stand-in: {len(last)} of {n} results after {timeout}s: {last}") from None

    def submission(self, submission_id: int) -> dict:
        return self._call("GET", f"submissions/{submission_id}")

    def submissions(self) -> List[dict]:
        return self._call("GET", "submissions")["submissions"]

    def wait_for_submission(self, submission_id: int, predicate, timeout: float = 30,
                            what: str = "submission state") -> dict:
        """Poll GET /_standin/submissions/N until predicate(state) holds; return that state."""
        last = {}

        def check():
            last.update(self.submission(submission_id))
            return dict(last) if predicate(last) else None

        try:
            return self.wait_for(check, timeout, what=what)
        except TimeoutError:
            raise TimeoutError(f"stand-in: submission {submission_id}: {what} not reached within "
                               f"{timeout}s; last state {last}") from None

    def wait_for_status(self, submission_id: int, status: str, timeout: float = 30) -> dict:
        """LMS mode: wait until the submission's status (pending|pulled|retry|graded|failed) is `status`."""
        return self.wait_for_submission(submission_id, lambda s: s.get("status") == status, timeout,
                                        what=f"status {status}")

    def queues(self) -> dict:
        return self._call("GET", "queues")["queues"]

    def requests(self, log: bool = True) -> dict:
        return self._call("GET", "requests", query=None if log else {"log": "0"})

    def faults(self, **switches) -> dict:
        """With no arguments: the current switches. Otherwise merge them (see README.md "Faults")."""
        return self._call("POST", "faults", switches) if switches else self._call("GET", "faults")

    def clear_faults(self) -> dict:
        return self._call("POST", "faults", {"clear": True})

    def refuse_connections(self, seconds: float) -> dict:
        return self._call("POST", "faults", {"refuse_connections": seconds})

    def drop_sessions(self) -> dict:
        return self._call("POST", "faults", {"drop_sessions": True})

    def config(self, **settings) -> dict:
        return self._call("POST", "config", settings) if settings else self._call("GET", "config")

    def reset(self, sessions: bool = False, faults: bool = True) -> dict:
        return self._call("POST", "reset", {"sessions": sessions, "faults": faults})


class GraderSession:
    """A pull grader's side of XQueue over urllib with a cookie jar; never follows redirects."""

    def __init__(self, base_url: str, username: str = "lms", password: str = "password", csrf: bool = True,
                 timeout: float = 10, basic_auth: Optional[str] = None):
        self.base_url = base_url.rstrip("/")
        self.username, self.password, self.csrf, self.timeout = username, password, csrf, timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)
        self.basic_auth = basic_auth

    def cookie(self, name: str) -> Optional[str]:
        return next((c.value for c in self.jar if c.name == name), None)

    def raw(self, method: str, path: str, query: Optional[dict] = None, form: Optional[dict] = None,
            headers: Optional[dict] = None) -> HttpReply:
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if self.basic_auth:
            token = base64.b64encode(self.basic_auth.encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return HttpReply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as err:
            return HttpReply(err.code, err.headers, err.read())

    def csrf_headers(self) -> dict:
        """X-CSRFToken (the current csrftoken cookie) and a same-origin Referer; {} with csrf off."""
        if not self.csrf:
            return {}
        return {"X-CSRFToken": self.cookie("csrftoken") or "", "Referer": self.base_url + "/xqueue/login/"}

    def login_reply(self) -> HttpReply:
        """GET the login URL (csrf on: for the cookie), then POST the credentials; the POST's reply."""
        if self.csrf:
            self.raw("GET", "/xqueue/login/")
        form = {"username": self.username, "password": self.password}
        return self.raw("POST", "/xqueue/login/", form=form, headers=self.csrf_headers())

    def login(self) -> dict:
        """The login reply's JSON; raises unless it is one (LMS mode answers 400/401 with JSON too)."""
        reply = self.login_reply()
        if reply.status != 200 and not (reply.status in (400, 401)
                                        and reply.headers.get("Content-Type") == JSON):
            raise RuntimeError(f"login to {self.base_url}/xqueue/login/ answered {reply.status}: "
                               f"{reply.text[:200]}")
        return reply.json()

    def get_submission(self, queue: str) -> HttpReply:
        return self.raw("GET", "/xqueue/get_submission/", query={"queue_name": queue})

    def get_queuelen(self, queue: str) -> HttpReply:
        return self.raw("GET", "/xqueue/get_queuelen/", query={"queue_name": queue})

    def put_result(self, xqueue_header: str, xqueue_body, headers: Optional[dict] = None) -> HttpReply:
        """POST a result with csrf_headers() (the LMS checks them; openedx/xqueue ignores them);
        `headers` adds or replaces headers, a None value leaves that header out."""
        body = xqueue_body if isinstance(xqueue_body, str) else json.dumps(xqueue_body)
        form = {"xqueue_header": xqueue_header, "xqueue_body": body}
        merged = dict(self.csrf_headers(), **(headers or {}))
        return self.raw("POST", "/xqueue/put_result/", form=form,
                        headers={k: v for k, v in merged.items() if v is not None})

    def pull(self, queue: str) -> Optional[dict]:
        """One submission decoded layer by layer, or None when the queue is empty."""
        reply = self.get_submission(queue)
        if reply.status != 200:
            raise RuntimeError(f"get_submission answered {reply.status}")
        outer = reply.json()
        if outer["return_code"] != 0:
            return None
        content = json.loads(outer["content"])
        return {"raw_header": content["xqueue_header"], "header": json.loads(content["xqueue_header"]),
                "body": json.loads(content["xqueue_body"]), "files": json.loads(content["xqueue_files"])}
