#!/usr/bin/env python3
"""A faithful XQueue stand-in for the end-to-end tests, the demo and the benchmark.

Two modes, chosen per instance (StandinConfig(mode=...), --mode, POST /_standin/config {"mode"}):
"xqueue" (default) is the openedx/xqueue server, described first; "lms" is the LMS's own XQueue
API (see "LMS mode" below; code in standin_lms.py next to this file).

In xqueue mode it behaves like openedx/xqueue's external (pull) interface, replies byte-for-byte
in the upstream shape (Django `HttpResponse(json.dumps({...}))`, content type text/html):

  GET  /xqueue/login/           sets a `csrftoken` cookie; replies return_code 1 "login_required"
  POST /xqueue/login/           form username, password -> 0 "Logged in" + `sessionid` cookie,
                                1 "Incorrect login credentials", 1 "Insufficient login info".
                                With CSRF on (default): needs the csrftoken cookie echoed as
                                X-CSRFToken (or form csrfmiddlewaretoken) and a same-origin
                                Referer, else 403 "CSRF verification failed".
  GET  /xqueue/logout/          0 "Goodbye"; GET /xqueue/status/ -> 0 "OK" (no login needed)
  GET  /xqueue/get_submission/?queue_name=Q
                                0 json.dumps({"xqueue_header": json.dumps({"submission_id": N,
                                "submission_key": K}), "xqueue_body": <str>, "xqueue_files": <str>})
                                1 "Queue 'Q' is empty" | 1 "Queue 'Q' not found" |
                                1 "'get_submission' must provide parameter 'queue_name'"
  GET  /xqueue/get_queuelen/?queue_name=Q
                                0 <int waiting> | 1 "Valid queue names are: a, b" |
                                1 "'get_queuelen' must provide parameter 'queue_name'"
  POST /xqueue/put_result/      form xqueue_header, xqueue_body -> 0 "" |
                                1 "Incorrect key for submission" | 1 "Submission does not exist" |
                                1 "Incorrect reply format" | 1 "'put_result' must use HTTP POST";
                                a non-integer submission_id is a 500, as upstream (int() raises).
  POST forms over 2.5 MiB (Django's DATA_UPLOAD_MAX_MEMORY_SIZE): 400 "Bad Request (400)".
  Logged out: 302 to /xqueue/login?next=<path> (or 401/403 when configured). A known path
  without its trailing slash: 301 to the slashed path (Django APPEND_SLASH).

Requeue (upstream SubmissionManager.time_filter): a pulled submission is served again once
`processing_delay` seconds have passed since its pull without an accepted result, with a new
key; only the newest key is accepted. An accepted result retires the submission (the stand-in
plays an LMS that always acknowledges); as upstream, the key stays valid, so posting the same
result again is accepted again (recorded with "duplicate": true).

Queues are those declared (--queue, config "queues"); submitting to a new queue through the
control API declares it, as if the LMS's XQueue had it configured. Sessions survive
refuse_connections (upstream keeps them in its database).

LMS mode (openedx/edx-submissions XQueueViewSet, mounted at /xqueue/ on the LMS root; Django REST
framework, session authentication). Replies are DRF JSON: compact separators, content type
application/json. The view's own replies are {"return_code": 0|1, "content": ...} with a real
status; DRF's authentication, permission, CSRF and method errors are {"detail": "..."}.
  GET  /xqueue/login/           200 0 "" and a `csrftoken` cookie (kept if the request had a valid one)
  POST /xqueue/login/           form (or JSON) username, password -> 200 0 "Logged in" + a new
                                `sessionid` and a ROTATED `csrftoken` cookie; 401 1 "Incorrect login
                                credentials"; 400 1 "Insufficient login info". Needs no CSRF token
                                (unless the request already carries a live session: then as below).
  GET  /xqueue/get_submission/?queue_name=Q
                                200 0 <content as in xqueue mode> | 200 1 "Queue 'Q' is empty" (also for
                                an unknown queue) | 400 1 "'get_submission' must provide parameter
                                'queue_name'" (missing or empty)
  POST /xqueue/put_result/      form (or JSON) xqueue_header, xqueue_body -> 200 0 "" |
                                400 1 "Incorrect reply format" (field missing, header or body not JSON,
                                header not an object or without submission_id/submission_key) |
                                404 1 "Submission does not exist" | 403 1 "Incorrect key for submission" |
                                409 1 "Submission is currently being processed" (fault "conflict") |
                                500 (HTML) when xqueue_body is JSON but not an object, submission_id is
                                not an integer, or the submission is already graded or failed (a
                                retried post whose first reply was lost: the first was recorded).
  POST /xqueue/logout/          200 0 "Goodbye"; POST /xqueue/status/ -> 200 text/html "return_codecontent"
                                (upstream hands a dict to HttpResponse). Both need a group member.
  No get_queuelen, no submit: 404 (HTML), with or without the trailing slash. A known endpoint without
  its trailing slash: 301 to the slashed path (not logged, as in xqueue mode). The wrong method on a
  known endpoint: 405 {"detail": "Method \\"GET\\" not allowed."} with Allow (GET /xqueue/status/,
  GET /xqueue/logout/, GET /xqueue/put_result/), after the checks below.
  Checks, in DRF's order, on every endpoint:
   1. CSRF, only for a request with a live session and an unsafe method (POST); config csrf false
      skips it (as edx-submissions 4.0.0's CSRF-exempt session authentication did):
      403 {"detail": "CSRF Failed: <Django's reason>"}: "CSRF token missing.", "CSRF token from the
      'X-Csrftoken' HTTP header incorrect." (also "... has incorrect length."; a csrfmiddlewaretoken
      form field is read first: "CSRF token from POST incorrect."), "CSRF cookie not set.". The token
      must equal the cookie as rotated by the login (a 64-character masked token is unmasked first):
      the pre-login token is refused. An Origin header, when sent, must be http://<Host> ("Origin
      checking failed - O does not match any trusted origins."); without Origin, the Referer must be
      present and name this host ("Referer checking failed - no Referer." / "... R does not match any
      trusted origins."), as Django checks over HTTPS (a production LMS) though the stand-in is HTTP.
   2. Permission (all but login): no session -> 403 {"detail": "Authentication credentials were not
      provided."} (never a 302; unauth_status is ignored); a user listed in `not_in_xqueue_group`
      (outside the Django group "xqueue") -> 403 {"detail": "You do not have permission to perform
      this action."}; such a user's login succeeds.
   3. Method (405), then the view; put_result/login bodies: a form, multipart or JSON (other content
      types: 415 {"detail": ...}; bad JSON: 400 {"detail": "JSON parse error - ..."}).
  Submissions follow ExternalGraderDetail: status pending -> pulled -> graded (the LMS's "retired") |
  retry | failed. get_submission serves the oldest (by status time) of pending, retry and stale
  pulled ones. Pending or retry -> pulled with a new `submission_key` (a UUID4 string). A pulled
  submission older than processing_delay (the LMS's fixed 5 minutes; default 300 s in this mode) is
  handed out again on every poll WITH THE SAME KEY (its status time is not renewed).
  The server rebuilds xqueue_body (keys in this order): "grader_payload" = json.dumps({"grader": <the
  submitted payload's "grader", or "">}) (every other key, lang, hide_output, ..., is lost),
  "student_info" = json.dumps({"anonymous_student_id": <submitted, or "student-N">, "submission_time":
  "<unix seconds at submit, as a string>", "random_seed": 1}), "student_response" as submitted.
  xqueue_files is json.dumps({original_filename: url}), "{}" when none. A file given by content is
  stored and listed as "/media/<queue>/<uuid4>" (relative, no host, no extension: the LMS's file-system
  storage) or, with submit option "files_absolute": true, as http://<stand-in>/media/<queue>/<uuid4>
  (object storage). GET /media/<queue>/<uuid> serves it without login (logged as endpoint "media",
  queue <queue>; unknown: 404); its "http_error"/"delay" options or a "media" fault make that fetch
  fail or lag. A file given by URL is listed as given. Submit in LMS mode takes no raw "xqueue_body"
  (400) and needs grader_payload to be a JSON object (or "").
  put_result scores: xqueue_body's "score" must be integer points (2, 2.0 and "2" count; 0.5, true,
  null, missing and negative do not); the LMS does not compare it with points_possible (submit option,
  default 1), so a larger integer is recorded too. An integer score is recorded (a result with
  "points_earned" and "points_possible"; status graded). Any other score is answered 200 0 "" but NOT
  recorded: the submission goes to retry (num_failures + 1), is served again at once with a new key,
  and the fifth such failure makes it failed (never served again). A post for a retry submission with
  its old key: an integer score grades it; a non-integer one is a 500. The whole xqueue_body is the
  score message (recorded in results as in xqueue mode).
  Faults, request counters and the log work as in xqueue mode. Every request under /xqueue/ is counted
  under its path's name (get_queuelen and status too, with their 404/405) and /media/ requests under
  "media"; fault switches apply by that name. "incorrect_key" answers 403 1 "Incorrect key for
  submission"; "conflict" {"times": n} answers 409 1 "Submission is currently being processed"; both
  store nothing. "http_error" answers the view's own JSON refusal where the view has one for that
  status: put_result 400 "Incorrect reply format", 403 "Incorrect key for submission", 404 "Submission
  does not exist", 409 "Submission is currently being processed"; get_submission 400 "'get_submission'
  must provide parameter 'queue_name'" (each {"return_code": 1, "content": ...}, application/json);
  any other status or endpoint gets the generic HTML error page. Basic auth (config basic_auth) guards
  /xqueue/ only.

Control API (not part of XQueue), JSON in and out, no login, never subject to faults:
  GET  /_standin/health                    {"ok": true, "port": P}
  POST /_standin/submit                    {"queue", "student_response", "grader_payload"
                                            (object -> JSON text, string -> as is),
                                            "student_info" (object; default generated),
                                            "student_info_as_object" (false: LMS sends it as a
                                            JSON string), "xqueue_body" (raw string, overrides
                                            the fields above), "files" {name: url | {"content":
                                            text, "http_error": status, "delay": seconds}}
                                            (a content file answers that status / sleeps first when
                                            fetched), "count" (n copies), LMS mode: "points_possible"
                                            (default 1), "files_absolute" (default false)}
                                            -> {"submission_id", "submission_ids", "queue",
                                                "xqueue_body", "xqueue_files"}
  GET  /_standin/results[?queue=Q]         {"results": [...accepted, in order], "rejected": [...]}
  GET  /_standin/submissions               {"submissions": [state, ...]}
  GET  /_standin/submissions/N             state (404 if unknown): "submission_id", "queue", "state"
                                            (waiting|in_progress|done; LMS mode also failed),
                                            "pulled_count" (every hand-out), "keys_issued" (distinct
                                            keys, oldest first), "current_key", "accepted_results"
                                            (results recorded), "rejected_put_results" (wrong key),
                                            "xqueue_body", "xqueue_files", ...; LMS mode also
                                            "status" (pending|pulled|retry|graded|failed),
                                            "num_failures", "points_possible", "put_results" (each
                                            post that found the submission: "key", "score",
                                            "status" (HTTP), "outcome" graded|retry|failed|
                                            incorrect_key|conflict|invalid transition ...)
  GET  /_standin/queues                    {"queues": {Q: {"waiting", "in_progress", "done", "total"
                                            (LMS mode also "failed")}}}
  GET  /_standin/requests[?log=0]          {"counts", "by_queue", "polls", "log"}
  GET  /_standin/faults                    current switches
  POST /_standin/faults                    merge switches (see Faults below)
  GET  /_standin/config, POST /_standin/config
                                           {"processing_delay", "csrf", "unauth_status",
                                            "users" {name: password}, "queues" [names to add],
                                            "basic_auth" "u:p" | null, "max_form_bytes",
                                            "mode" "xqueue"|"lms" (only while no submission is
                                            stored; drops every session; a processing_delay never
                                            set follows the mode: 60 s / 300 s),
                                            "not_in_xqueue_group" [user names] (LMS mode)}
  POST /_standin/reset                     {"sessions": false, "faults": true}: forget
                                           submissions, results and request counters
  GET  /_standin/files/N/NAME              file content given at submit time

Faults (POST /_standin/faults), endpoint names: login, logout, status, get_submission,
get_queuelen, put_result, media (LMS mode's files), or "*" for all of them. A value `v` applies
until cleared; an object
{"...": v, "times": n} applies to the next n matching requests only; null/false clears.
  "http_error":  {endpoint: status | {"status": s, "times": n}}   answer that status, do nothing
  "delay":       {endpoint: seconds | {"seconds": s, "times": n}} sleep before answering
  "drop":        {endpoint: true | {"times": n}}      close the connection, do nothing, no reply
  "lose_reply":  {endpoint: true | {"times": n}}      do the work, then close without a reply
  "incorrect_key": true | {"times": n}                 put_result answers 1 "Incorrect key for
                                                       submission" and stores nothing
  "conflict":      true | {"times": n}                 LMS mode: put_result (for an existing
                                                       submission) answers 409 and stores nothing
  "drop_sessions": true                                forget every session now (next call: 302)
  "refuse_connections": seconds                        close the listening port and every open
                                                       connection now; re-open the same port later
  "clear": true                                        clear every switch first

Run:  python3 tests/xqueue_standin.py --port 0 --port-file PATH --user lms:password
        [--mode xqueue|lms] [--processing-delay S] [--no-csrf] [--unauth-status 302|401|403]
        [--queue NAME ...] [--not-in-xqueue-group NAME ...] [--host 127.0.0.1] [--basic-auth u:p]
        [--quiet]; SIGTERM/SIGINT exit 0 and remove the port file.
Use:  with XQueueStandin(StandinConfig(processing_delay=1)) as xq: xq.client().submit(...)
      XQueueStandin(StandinConfig(mode="lms", not_in_xqueue_group=["x"])); StandinClient.wait_for_status(
      sid, "graded"); GraderSession.put_result sends X-CSRFToken (the current cookie) and a Referer.
Standard library only.
"""

import argparse
import base64
import dataclasses
import email.parser
import email.policy
import hashlib
import http.cookiejar
import http.cookies
import itertools
import json
import os
import secrets
import signal
import socket
import socketserver
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional

import standin_lms

XQUEUE_PREFIX = "/xqueue/"
CONTROL_PREFIX = "/_standin/"
LOGIN_URL = "/xqueue/login"  # upstream settings.LOGIN_URL (no trailing slash)
ENDPOINTS = ("login", "logout", "status", "get_submission", "get_queuelen", "put_result")
PUBLIC_ENDPOINTS = ("login", "logout", "status")
FAULT_ENDPOINTS = ENDPOINTS + ("media",)  # "media": the LMS's file URLs (LMS mode)
FAULT_KINDS = ("http_error", "delay", "drop", "lose_reply", "incorrect_key", "conflict")
MODES = ("xqueue", "lms")
DEFAULT_PROCESSING_DELAY = {"xqueue": 60.0, "lms": standin_lms.DEFAULT_PROCESSING_DELAY}
MAX_BODY_BYTES = 64 * 1024 * 1024
REQUEST_LOG_CAP = 50000
HTML = "text/html; charset=utf-8"
JSON = "application/json"


def compose_reply(success: bool, content) -> str:
    """The upstream reply: json.dumps with default separators, return_code 0 or 1."""
    return json.dumps({"return_code": 0 if success else 1, "content": content})


def _random_token(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _is_valid_result_body(parsed) -> bool:
    """True when an xqueue_body holds what the LMS expects: {"correct": bool, "score": number, "msg": str}."""
    return (isinstance(parsed, dict) and isinstance(parsed.get("correct"), bool)
            and isinstance(parsed.get("score"), (int, float)) and not isinstance(parsed.get("score"), bool)
            and isinstance(parsed.get("msg"), str))


# ----------------------------------------------------------------------------------------------
# Configuration and state
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StandinConfig:
    host: str = "127.0.0.1"
    port: int = 0
    users: Dict[str, str] = dataclasses.field(default_factory=lambda: {"lms": "password"})
    processing_delay: Optional[float] = None  # None: the mode's server default (60 s xqueue, 300 s lms)
    csrf: bool = True
    unauth_status: int = 302
    queues: List[str] = dataclasses.field(default_factory=list)
    basic_auth: Optional[str] = None  # "user:pass" demanded on every XQueue call (nginx in front)
    max_form_bytes: int = 2621440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE: bigger forms get a 400
    verbose: bool = False
    mode: str = "xqueue"  # "xqueue" (openedx/xqueue) or "lms" (the LMS's XQueue API, edx-submissions)
    not_in_xqueue_group: List[str] = dataclasses.field(default_factory=list)  # LMS mode: users lacking
    # the Django group "xqueue": they log in, then get 403 on everything else


@dataclasses.dataclass
class _Submission:
    id: int
    queue: str
    xqueue_body: str
    xqueue_files: str
    arrival_time: float
    pull_time: Optional[float] = None  # monotonic
    last_pull_wall: Optional[float] = None
    pullkey: str = ""
    retired: bool = False
    pulled_count: int = 0
    keys_issued: List[str] = dataclasses.field(default_factory=list)
    accepted_results: int = 0
    rejected_put_results: int = 0
    # LMS mode (ExternalGraderDetail): status pending|pulled|retry|graded|failed, its time (monotonic)
    lms: bool = False
    status: str = "pending"
    status_time: float = 0.0
    num_failures: int = 0
    points_possible: int = 1
    put_results: List[dict] = dataclasses.field(default_factory=list)

    def servable(self, now: float, delay: float) -> bool:
        return not self.retired and (self.pull_time is None or self.pull_time <= now - delay)

    def describe(self, now: float, delay: float) -> dict:
        if self.lms:
            return dict(self._describe_common(), **standin_lms.describe(self, now, delay))
        if self.retired:
            state = "done"
        elif self.servable(now, delay):
            state = "waiting"
        else:
            state = "in_progress"
        return dict(self._describe_common(), state=state)

    def _describe_common(self) -> dict:
        return {"submission_id": self.id, "queue": self.queue,
                "pulled_count": self.pulled_count, "keys_issued": list(self.keys_issued),
                "current_key": self.pullkey, "accepted_results": self.accepted_results,
                "rejected_put_results": self.rejected_put_results, "arrival_time": self.arrival_time,
                "last_pull_time": self.last_pull_wall, "xqueue_body": self.xqueue_body,
                "xqueue_files": self.xqueue_files}


class _Faults:
    """Runtime fault switches; every read that applies a switch consumes one of its `times`."""

    def __init__(self):
        self._switches: Dict[str, Dict[str, dict]] = {kind: {} for kind in FAULT_KINDS}

    def clear(self):
        for kind in FAULT_KINDS:
            self._switches[kind].clear()

    def update(self, kind: str, spec):
        if kind in ("incorrect_key", "conflict"):
            spec = {"put_result": spec}
        if spec is None or spec is False:
            self._switches[kind].clear()
            return
        if not isinstance(spec, dict):
            raise ValueError(f"fault '{kind}' needs an object keyed by endpoint")
        for endpoint, value in spec.items():
            if endpoint != "*" and endpoint not in FAULT_ENDPOINTS:
                raise ValueError(f"fault '{kind}': unknown endpoint '{endpoint}'")
            entry = self._normalise(kind, value)
            if entry is None:
                self._switches[kind].pop(endpoint, None)
            else:
                self._switches[kind][endpoint] = entry

    @staticmethod
    def _normalise(kind: str, value) -> Optional[dict]:
        times = None
        if isinstance(value, dict):
            times = value.get("times")
            if times is not None and (not isinstance(times, int) or times < 0):
                raise ValueError(f"fault '{kind}': times must be a non-negative integer")
            value = {"http_error": value.get("status"), "delay": value.get("seconds")}.get(kind, True)
        if value is None or value is False or value == 0 or times == 0:
            return None
        if kind == "http_error" and (not isinstance(value, int) or isinstance(value, bool)
                                     or not 100 <= value <= 599):
            raise ValueError("fault 'http_error' needs an HTTP status between 100 and 599")
        if kind == "delay" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError("fault 'delay' needs a number of seconds")
        if kind in ("drop", "lose_reply", "incorrect_key", "conflict"):
            value = True
        return {"value": value, "times": times}

    def take(self, kind: str, endpoint: str):
        switches = self._switches[kind]
        key = endpoint if endpoint in switches else ("*" if "*" in switches else None)
        if key is None:
            return None
        entry = switches[key]
        if entry["times"] is not None:
            entry["times"] -= 1
            if entry["times"] <= 0:
                del switches[key]
        return entry["value"]

    def snapshot(self) -> dict:
        return {kind: {ep: dict(entry) for ep, entry in switches.items()}
                for kind, switches in self._switches.items()}


class StandinState:
    """Everything the server knows, behind one lock; all decisions about XQueue replies live here."""

    def __init__(self, config: StandinConfig):
        self.config = config
        self.lock = threading.Lock()
        self.queues: List[str] = list(dict.fromkeys(config.queues))
        self.sessions: Dict[str, str] = {}
        self.submissions: Dict[int, _Submission] = {}
        self.files: Dict[tuple, standin_lms.StoredFile] = {}  # (submission id, name): xqueue mode
        self.media: Dict[tuple, standin_lms.StoredFile] = {}  # (queue, uuid): LMS mode
        self.results: List[dict] = []
        self.rejected: List[dict] = []
        self.faults = _Faults()
        self.refused_until: Optional[float] = None
        self._ids = itertools.count(1)
        self._key_seq = itertools.count(1)
        self._reset_counters()

    def _reset_counters(self):
        self.counts: Dict[str, int] = {}
        self.by_queue: Dict[str, Dict[str, int]] = {}
        self.request_log: deque = deque(maxlen=REQUEST_LOG_CAP)

    # -- control side --------------------------------------------------------------------------
    def new_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def add_submission(self, sid: int, queue: str, xqueue_body: str, xqueue_files: str, **extra):
        """Queue a submission; its queue is declared on first use (as if the LMS had it configured)."""
        with self.lock:
            if queue not in self.queues:
                self.queues.append(queue)
            self.submissions[sid] = _Submission(sid, queue, xqueue_body, xqueue_files, time.time(), **extra)

    def reset(self, sessions: bool, faults: bool):
        with self.lock:
            self.submissions.clear()
            self.files.clear()
            self.media.clear()
            self.results.clear()
            self.rejected.clear()
            self._reset_counters()
            if sessions:
                self.sessions.clear()
            if faults:
                self.faults.clear()

    def queue_summary(self) -> dict:
        now, delay = time.monotonic(), self.config.processing_delay
        states = ("waiting", "in_progress", "done") + (("failed",) if self.config.mode == "lms" else ())
        with self.lock:
            summary = {q: dict.fromkeys(states + ("total",), 0) for q in self.queues}
            for sub in self.submissions.values():
                entry = summary.setdefault(sub.queue, dict.fromkeys(states + ("total",), 0))
                entry[sub.describe(now, delay)["state"]] += 1
                entry["total"] += 1
            return summary

    def request_summary(self, with_log: bool) -> dict:
        with self.lock:
            log = list(self.request_log)
            summary = {"counts": dict(self.counts),
                       "by_queue": {ep: dict(qs) for ep, qs in self.by_queue.items()}}
        summary["polls"] = _poll_summary(log)
        if with_log:
            summary["log"] = log
        return summary

    # -- request accounting ----------------------------------------------------------------------
    def count_request(self, method: str, endpoint: str, queue: Optional[str]) -> dict:
        entry = {"time": time.time(), "method": method, "endpoint": endpoint, "queue": queue, "status": None,
                 "return_code": None, "fault": None}
        with self.lock:
            self.counts[endpoint] = self.counts.get(endpoint, 0) + 1
            if queue is not None:
                per_queue = self.by_queue.setdefault(endpoint, {})
                per_queue[queue] = per_queue.get(queue, 0) + 1
            self.request_log.append(entry)
        return entry

    # -- sessions ----------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> bool:
        expected = self.config.users.get(username)
        return expected is not None and secrets.compare_digest(expected, password)

    def open_session(self, username: str, old_session: Optional[str]) -> str:
        session = _random_token(32).lower()
        with self.lock:
            if old_session:
                self.sessions.pop(old_session, None)
            self.sessions[session] = username
        return session

    def session_user(self, session: Optional[str]) -> Optional[str]:
        with self.lock:
            return self.sessions.get(session) if session else None

    def close_session(self, session: Optional[str]):
        with self.lock:
            self.sessions.pop(session, None)

    def drop_sessions(self):
        with self.lock:
            self.sessions.clear()

    # -- the external interface ----------------------------------------------------------------
    def get_submission(self, queue_name: str) -> str:
        now = time.monotonic()
        with self.lock:
            if queue_name not in self.queues:
                return compose_reply(False, "Queue '%s' not found" % queue_name)
            candidates = [s for s in self.submissions.values()
                          if s.queue == queue_name and s.servable(now, self.config.processing_delay)]
            if not candidates:
                return compose_reply(False, "Queue '%s' is empty" % queue_name)
            sub = min(candidates, key=lambda s: (s.arrival_time, s.id))
            sub.pullkey = hashlib.md5(f"{time.time()}{sub.id}/{next(self._key_seq)}".encode()).hexdigest()
            sub.pull_time = now
            sub.last_pull_wall = time.time()
            sub.pulled_count += 1
            sub.keys_issued.append(sub.pullkey)
            header = json.dumps({"submission_id": sub.id, "submission_key": sub.pullkey})
            payload = {"xqueue_header": header, "xqueue_body": sub.xqueue_body,
                       "xqueue_files": sub.xqueue_files}
            return compose_reply(True, json.dumps(payload))

    def queue_length(self, queue_name: str) -> str:
        now = time.monotonic()
        with self.lock:
            if queue_name not in self.queues:
                return compose_reply(False, "Valid queue names are: " + ", ".join(self.queues))
            waiting = sum(1 for s in self.submissions.values()
                          if s.queue == queue_name and s.servable(now, self.config.processing_delay))
            return compose_reply(True, waiting)

    def put_result(self, form: Dict[str, str]) -> Optional[str]:
        """The reply text, or None when upstream would fail with a 500 (non-integer submission_id)."""
        header, body = form.get("xqueue_header"), form.get("xqueue_body")
        header_dict = None
        if header is not None and body is not None:
            try:
                header_dict = json.loads(header)
            except ValueError:
                header_dict = None
        if not isinstance(header_dict, dict) or not {"submission_id", "submission_key"} <= header_dict.keys():
            self._reject(None, header, body, "Incorrect reply format")
            return compose_reply(False, "Incorrect reply format")
        try:
            submission_id = int(header_dict["submission_id"])
        except (TypeError, ValueError):
            self._reject(None, header, body, "non-integer submission_id (500)")
            return None
        key = header_dict["submission_key"]
        with self.lock:
            sub = self.submissions.get(submission_id)
            if sub is None:
                self._reject_locked(submission_id, header, body, "Submission does not exist")
                return compose_reply(False, "Submission does not exist")
            if self.faults.take("incorrect_key", "put_result") or not sub.pullkey or key != sub.pullkey:
                sub.rejected_put_results += 1
                self._reject_locked(submission_id, header, body, "Incorrect key for submission")
                return compose_reply(False, "Incorrect key for submission")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            self.results.append({"index": len(self.results), "submission_id": sub.id, "queue": sub.queue,
                                 "key": key, "xqueue_header": header, "xqueue_body": body, "body": parsed,
                                 "body_valid": _is_valid_result_body(parsed), "duplicate": sub.retired,
                                 "time": time.time()})
            sub.accepted_results += 1
            sub.retired = True
            return compose_reply(True, "")

    def _reject(self, submission_id, header, body, reason):
        with self.lock:
            self._reject_locked(submission_id, header, body, reason)

    def _reject_locked(self, submission_id, header, body, reason):
        self.rejected.append({"submission_id": submission_id, "xqueue_header": header, "xqueue_body": body,
                              "reason": reason, "time": time.time()})


def _poll_summary(log: List[dict]) -> dict:
    """Per queue: get_submission count, first/last time, smallest gap overall and after an empty reply."""
    polls: Dict[str, dict] = {}
    for entry in log:
        if entry["endpoint"] != "get_submission" or entry["queue"] is None:
            continue
        stats = polls.setdefault(entry["queue"], {"count": 0, "first": entry["time"], "last": None,
                                                  "min_gap": None, "min_gap_after_empty": None,
                                                  "_last_empty": False})
        if stats["last"] is not None:
            gap = entry["time"] - stats["last"]
            stats["min_gap"] = gap if stats["min_gap"] is None else min(stats["min_gap"], gap)
            if stats["_last_empty"]:
                prev = stats["min_gap_after_empty"]
                stats["min_gap_after_empty"] = gap if prev is None else min(prev, gap)
        stats["count"] += 1
        stats["last"] = entry["time"]
        stats["_last_empty"] = entry["return_code"] == 1
    for stats in polls.values():
        del stats["_last_empty"]
    return polls


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------
class _DropConnection(Exception):
    """Close the connection without writing a reply."""


class _FormTooLarge(Exception):
    """Django's RequestDataTooBig: the view never runs, the client gets a 400."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as behind gunicorn/nginx
    server_version = "XQueueStandin/1.0"
    # Headers and body go out as separate writes: without this, Nagle holds each reply ~40 ms.
    disable_nagle_algorithm = True
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def standin(self) -> "XQueueStandin":
        return self.server.standin

    @property
    def state(self) -> StandinState:
        return self.server.standin.state

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def log_request(self, code="-", size="-"):
        pass  # _log_line writes one line per XQueue call instead

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        if self.standin.config.verbose:
            sys.stderr.write("[standin] %s\n" % (format % args))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, status: int, body, content_type: str = HTML, headers=(), cookies=()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Vary", "Cookie")
        for name, value in headers:
            self.send_header(name, value)
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self._sent_status = status

    def _json(self, status: int, payload):
        self._reply(status, json.dumps(payload), JSON)

    def _cookies(self) -> Dict[str, str]:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def _form(self, body: bytes) -> Dict[str, str]:
        """request.POST: url-encoded or multipart form fields, last value wins (Django QueryDict)."""
        self._check_form_size(body)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
            form = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name is not None:
                    form[name] = part.get_payload(decode=True).decode("utf-8", "replace")
            return form
        return {}

    def _check_form_size(self, body: bytes):
        if len(body) > self.standin.config.max_form_bytes:
            raise _FormTooLarge()

    def _dispatch(self):
        self._sent_status = None
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError as err:
            self.close_connection = True
            self._reply(413, str(err), "text/plain")
            return
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url, body)
            return
        if self.standin.config.mode == "lms":
            standin_lms.handle(self, url, body)
            return
        endpoint = url.path[len(XQUEUE_PREFIX):].rstrip("/") if url.path.startswith(XQUEUE_PREFIX) else None
        if endpoint not in ENDPOINTS:
            self._reply(404, "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>")
            return
        if not url.path.endswith("/"):
            location = url.path + "/" + ("?" + url.query if url.query else "")
            self._reply(301, "", headers=[("Location", location)])
            return
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self._logged(endpoint, query.get("queue_name"),
                     lambda entry: self._xqueue(endpoint, url, query, body, entry))

    def _logged(self, endpoint: str, queue: Optional[str], work):
        """Count and log one request, run work(entry); turn a too-large form or a drop into their replies."""
        entry = self.state.count_request(self.command, endpoint, queue)
        try:
            work(entry)
        except _FormTooLarge:
            entry["fault"] = "form too large"
            self._reply(400, "<h1>Bad Request (400)</h1>")
        except _DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        finally:
            entry["status"] = self._sent_status
            self._log_line(entry)

    def _log_line(self, entry: dict):
        if self.standin.config.verbose:
            fault = f" fault={entry['fault']}" if entry["fault"] else ""
            rc = f" rc={entry['return_code']}" if entry["return_code"] is not None else ""
            status = entry["status"] or "dropped"
            sys.stderr.write(f"[standin] {self.command} {self.path} -> {status}{rc}{fault}\n")

    # -- XQueue ----------------------------------------------------------------------------------
    def _apply_faults(self, endpoint: str, entry: dict, error_reply=None):
        """Apply this request's switches: (True, _) when already answered (http_error), else
        (False, lose_reply); a drop raises _DropConnection. `error_reply(status)` may give the
        (body, content type) an http_error answers with (None: the generic error page)."""
        state = self.state
        with state.lock:
            delay = state.faults.take("delay", endpoint)
            drop = state.faults.take("drop", endpoint)
            error_status = None if drop else state.faults.take("http_error", endpoint)
            lose_reply = None if (drop or error_status) else state.faults.take("lose_reply", endpoint)
        if delay:
            entry["fault"] = f"delay {delay}s"
            time.sleep(delay)
        if drop:
            entry["fault"] = "drop"
            raise _DropConnection()
        if error_status:
            entry["fault"] = f"http_error {error_status}"
            special = error_reply(error_status) if error_reply else None
            if special is not None:
                self._reply(error_status, special[0], special[1])
                return True, None
            page = f"<h1>Error ({error_status})</h1>"
            if error_status == 500:
                page = "<h1>Server Error (500)</h1>"
            self._reply(error_status, page)
            return True, None
        return False, lose_reply

    def _lose_reply(self, entry: dict):
        entry["fault"] = "lose_reply"
        raise _DropConnection()

    def _xqueue(self, endpoint: str, url, query: dict, body: bytes, entry: dict):
        handled, lose_reply = self._apply_faults(endpoint, entry)
        if handled:
            return
        state = self.state
        if not self._basic_auth_ok():
            self._reply(401, "<h1>401 Authorization Required</h1>",
                        headers=[("WWW-Authenticate", 'Basic realm="xqueue"')])
            return
        cookies = self._cookies()
        if endpoint == "status":
            reply = (200, compose_reply(True, "OK"), [])
        elif endpoint == "login":
            reply = self._login(cookies, body)
        elif endpoint == "logout":
            reply = self._logout(cookies, body)
        elif state.session_user(cookies.get("sessionid")) is None:
            self._unauthenticated()
            return
        else:
            reply = self._external(endpoint, query, body)
        status, text, set_cookies = reply
        if status == 200:
            entry["return_code"] = json.loads(text)["return_code"]
        if lose_reply:
            entry["fault"] = "lose_reply"
            raise _DropConnection()
        self._reply(status, text, cookies=set_cookies)

    def _basic_auth_ok(self) -> bool:
        expected = self.standin.config.basic_auth
        if not expected:
            return True
        given = self.headers.get("Authorization", "")
        if not given.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(given[6:]).decode("utf-8")
        except ValueError:
            return False
        return secrets.compare_digest(decoded, expected)

    def _unauthenticated(self):
        status = self.standin.config.unauth_status
        if status == 302:
            location = LOGIN_URL + "?next=" + urllib.parse.quote(self.path, safe="/")
            self._reply(302, "", headers=[("Location", location)])
        else:
            self._reply(status, f"<h1>{status} {'Unauthorized' if status == 401 else 'Forbidden'}</h1>")

    def _csrf_failure(self, cookies: dict, form: dict) -> Optional[str]:
        """Django CsrfViewMiddleware's reasons, plus an always-on Referer check (as over HTTPS)."""
        referer = self.headers.get("Referer")
        if not referer:
            return "Referer checking failed - no Referer."
        referer_host = urllib.parse.urlsplit(referer).netloc
        if referer_host != self.headers.get("Host", ""):
            return f"Referer checking failed - {referer} does not match any trusted origins."
        cookie_token = cookies.get("csrftoken")
        if not cookie_token:
            return "CSRF cookie not set."
        given = self.headers.get("X-CSRFToken") or form.get("csrfmiddlewaretoken")
        if not given:
            return "CSRF token missing."
        if not secrets.compare_digest(given, cookie_token):
            return "CSRF token incorrect."
        return None

    def _csrf_cookie(self, token: str) -> str:
        return f"csrftoken={token}; Max-Age=31449600; Path=/; SameSite=Lax"

    def _login(self, cookies: dict, body: bytes):
        if self.command != "POST":
            token = cookies.get("csrftoken") or _random_token()
            return 200, compose_reply(False, "login_required"), [self._csrf_cookie(token)]
        form = self._form(body)
        if self.standin.config.csrf:
            reason = self._csrf_failure(cookies, form)
            if reason:
                return 403, ("<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. "
                             f"Request aborted.</p><p>Reason given for failure:</p><pre>{reason}</pre>"), []
        if "username" not in form or "password" not in form:
            return 200, compose_reply(False, "Insufficient login info"), []
        if not self.state.authenticate(form["username"], form["password"]):
            return 200, compose_reply(False, "Incorrect login credentials"), []
        session = self.state.open_session(form["username"], cookies.get("sessionid"))
        # Django's login() cycles the session key and rotates the CSRF token.
        return 200, compose_reply(True, "Logged in"), [
            f"sessionid={session}; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax",
            self._csrf_cookie(_random_token())]

    def _logout(self, cookies: dict, body: bytes):
        if self.command == "POST" and self.standin.config.csrf:
            reason = self._csrf_failure(cookies, self._form(body))
            if reason:
                return 403, f"<h1>Forbidden <span>(403)</span></h1><pre>{reason}</pre>", []
        self.state.close_session(cookies.get("sessionid"))
        expired = 'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax'
        return 200, compose_reply(True, "Goodbye"), [expired]

    def _external(self, endpoint: str, query: dict, body: bytes):
        if endpoint == "put_result":
            if self.command != "POST":
                return 200, compose_reply(False, "'put_result' must use HTTP POST"), []
            text = self.state.put_result(self._form(body))
            if text is None:
                return 500, "<h1>Server Error (500)</h1>", []
            return 200, text, []
        queue_name = query.get("queue_name")
        if queue_name is None:
            return 200, compose_reply(False, f"'{endpoint}' must provide parameter 'queue_name'"), []
        if endpoint == "get_submission":
            return 200, self.state.get_submission(queue_name), []
        return 200, self.state.queue_length(queue_name), []

    # -- control ---------------------------------------------------------------------------------
    def _control(self, url, body: bytes):
        path = url.path[len(CONTROL_PREFIX):].strip("/")
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the request body must be a JSON object")
            handler = _CONTROL_ROUTES.get((self.command, path.split("/")[0]))
            if handler is None:
                self._json(404, {"error": f"no control endpoint {self.command} /_standin/{path}"})
                return
            status, reply, after = handler(self, path, query, payload)
        except (ValueError, TypeError, KeyError) as err:
            self._json(400, {"error": str(err)})
            return
        if after is not None:
            self.close_connection = True
        if isinstance(reply, (bytes, str)):
            self._reply(status, reply, "application/octet-stream")
        else:
            self._json(status, reply)
        if after is not None:
            after()

    def _c_health(self, path, query, payload):
        return 200, {"ok": True, "port": self.standin.port}, None

    def _c_submit(self, path, query, payload):
        queue = payload["queue"]
        if not isinstance(queue, str) or not queue:
            raise ValueError("'queue' must be a non-empty string")
        count = payload.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("'count' must be a positive integer")
        ids = []
        for _ in range(count):
            sid = self.state.new_id()
            if self.standin.config.mode == "lms":
                body, files, extra = standin_lms.build_submission(self.standin, self.state, sid, queue,
                                                                  payload)
            else:
                (body, files), extra = self._build_submission(sid, payload), {}
            self.state.add_submission(sid, queue, body, files, **extra)
            ids.append(sid)
        return 200, {"submission_id": ids[0], "submission_ids": ids, "queue": queue,
                     "xqueue_body": body, "xqueue_files": files}, None

    def _build_submission(self, sid: int, payload: dict):
        """The strings the LMS would have queued: capa's CodeResponse body and its file URL map."""
        files = payload.get("files") or {}
        if not isinstance(files, dict):
            raise ValueError("'files' must be an object {name: url | {\"content\": text}}")
        urls = {}
        for name, spec in files.items():
            if isinstance(spec, dict):
                stored = standin_lms.file_from_spec(name, spec)
                with self.state.lock:
                    self.state.files[(sid, name)] = stored
                urls[name] = f"{self.standin.base_url}/_standin/files/{sid}/{urllib.parse.quote(name)}"
            else:
                urls[name] = str(spec)
        xqueue_files = json.dumps(urls)
        if "xqueue_body" in payload:
            raw = payload["xqueue_body"]
            return (raw if isinstance(raw, str) else json.dumps(raw)), xqueue_files
        grader_payload = payload.get("grader_payload", "")
        if not isinstance(grader_payload, str):
            grader_payload = json.dumps(grader_payload)
        student_info = payload.get("student_info")
        if student_info is None:
            student_info = {"anonymous_student_id": f"student-{sid}",
                            "submission_time": time.strftime("%Y%m%d%H%M%S", time.gmtime()),
                            "random_seed": sid}
        if not payload.get("student_info_as_object", False):
            student_info = json.dumps(student_info)
        body = {"grader_payload": grader_payload, "student_info": student_info,
                "student_response": payload.get("student_response", "")}
        return json.dumps(body), xqueue_files

    def _c_results(self, path, query, payload):
        queue = query.get("queue")
        with self.state.lock:
            results = [dict(r) for r in self.state.results if queue is None or r["queue"] == queue]
            rejected = [dict(r) for r in self.state.rejected]
        return 200, {"results": results, "rejected": rejected}, None

    def _c_submissions(self, path, query, payload):
        now, delay = time.monotonic(), self.standin.config.processing_delay
        parts = path.split("/")
        with self.state.lock:
            if len(parts) == 1:
                described = [s.describe(now, delay) for s in self.state.submissions.values()]
                return 200, {"submissions": described}, None
            sub = self.state.submissions.get(int(parts[1]))
            if sub is None:
                return 404, {"error": f"no submission {parts[1]}"}, None
            return 200, sub.describe(now, delay), None

    def _c_queues(self, path, query, payload):
        return 200, {"queues": self.state.queue_summary()}, None

    def _c_requests(self, path, query, payload):
        return 200, self.state.request_summary(with_log=query.get("log", "1") != "0"), None

    def _c_files(self, path, query, payload):
        parts = path.split("/", 2)
        with self.state.lock:
            stored = None
            if len(parts) == 3:
                stored = self.state.files.get((int(parts[1]), urllib.parse.unquote(parts[2])))
        if stored is None:
            return 404, {"error": f"no file /_standin/{path}"}, None
        if stored.delay:
            time.sleep(stored.delay)
        if stored.http_error:
            return stored.http_error, {"error": f"file option http_error {stored.http_error}"}, None
        return 200, stored.data, None

    def _c_faults_get(self, path, query, payload):
        return 200, self.standin.faults_snapshot(), None

    def _c_faults_post(self, path, query, payload):
        unknown = set(payload) - set(FAULT_KINDS) - {"clear", "drop_sessions", "refuse_connections"}
        if unknown:
            raise ValueError(f"unknown fault switches: {', '.join(sorted(unknown))}")
        refuse = payload.get("refuse_connections")
        if refuse is not None and (isinstance(refuse, bool) or not isinstance(refuse, (int, float))
                                   or refuse < 0):
            raise ValueError("'refuse_connections' takes a number of seconds")
        scratch = _Faults()  # validate every switch before applying any
        for kind in FAULT_KINDS:
            if kind in payload:
                scratch.update(kind, payload[kind])
        with self.state.lock:
            if payload.get("clear"):
                self.state.faults.clear()
            for kind in FAULT_KINDS:
                if kind in payload:
                    self.state.faults.update(kind, payload[kind])
        if payload.get("drop_sessions"):
            self.state.drop_sessions()
        after = None
        if refuse:
            self.state.refused_until = time.time() + refuse
            after = lambda: threading.Thread(target=self.standin.refuse_connections, args=(refuse,),
                                             daemon=True).start()
        return 200, self.standin.faults_snapshot(), after

    def _c_config_get(self, path, query, payload):
        return 200, self.standin.config_snapshot(), None

    def _c_config_post(self, path, query, payload):
        self.standin.reconfigure(payload)
        return 200, self.standin.config_snapshot(), None

    def _c_reset(self, path, query, payload):
        self.state.reset(sessions=bool(payload.get("sessions", False)),
                         faults=bool(payload.get("faults", True)))
        return 200, {"ok": True}, None


_CONTROL_ROUTES = {
    ("GET", "health"): _Handler._c_health,
    ("POST", "submit"): _Handler._c_submit,
    ("GET", "results"): _Handler._c_results,
    ("GET", "submissions"): _Handler._c_submissions,
    ("GET", "queues"): _Handler._c_queues,
    ("GET", "requests"): _Handler._c_requests,
    ("GET", "files"): _Handler._c_files,
    ("GET", "faults"): _Handler._c_faults_get,
    ("POST", "faults"): _Handler._c_faults_post,
    ("GET", "config"): _Handler._c_config_get,
    ("POST", "config"): _Handler._c_config_post,
    ("POST", "reset"): _Handler._c_reset,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, standin: "XQueueStandin"):
        self.standin = standin
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Clients dropping connections (and our own drop faults) are expected here.
        if self.standin.config.verbose:
            sys.stderr.write(f"[standin] connection error from {client_address[0]}: {sys.exc_info()[1]!r}\n")


# ----------------------------------------------------------------------------------------------
# Lifecycle
# ----------------------------------------------------------------------------------------------
class XQueueStandin:
    """The stand-in server on a background thread: start(), stop(), or use as a context manager."""

    def __init__(self, config: Optional[StandinConfig] = None, **overrides):
        self.config = dataclasses.replace(config or StandinConfig(), **overrides)
        if self.config.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.config.mode!r}")
        # A delay left to its default follows the mode (also when the mode is switched later).
        self._default_delay = self.config.processing_delay is None
        if self._default_delay:
            self.config.processing_delay = DEFAULT_PROCESSING_DELAY[self.config.mode]
        self.config.not_in_xqueue_group = list(self.config.not_in_xqueue_group)
        self.state = StandinState(self.config)
        self.port: Optional[int] = None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._lifecycle = threading.RLock()
        self._reopen_timer: Optional[threading.Timer] = None
        self._stopped = False

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, timeout: float = 10) -> "StandinClient":
        return StandinClient(self.base_url, timeout=timeout)

    def start(self) -> "XQueueStandin":
        with self._lifecycle:
            self._serve(self.config.port)
        return self

    def stop(self):
        with self._lifecycle:
            self._stopped = True
            if self._reopen_timer:
                self._reopen_timer.cancel()
            self._close_listener()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def refuse_connections(self, seconds: Optional[float] = None):
        """Close the port and every open connection; re-open the same port after `seconds` (None: never)."""
        with self._lifecycle:
            if self._reopen_timer:
                self._reopen_timer.cancel()
                self._reopen_timer = None
            self._close_listener()
            if seconds is not None:
                self.state.refused_until = time.time() + seconds
                self._reopen_timer = threading.Timer(seconds, self.accept_connections)
                self._reopen_timer.daemon = True
                self._reopen_timer.start()

    def accept_connections(self):
        """Re-open the listening port (the same number) after refuse_connections()."""
        with self._lifecycle:
            self.state.refused_until = None
            if self._stopped or self._server is not None:
                return
            deadline = time.monotonic() + 5
            while True:
                try:
                    self._serve(self.port)
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def _serve(self, port: int):
        self._server = _Server((self.config.host, port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"xqueue-standin:{self.port}", daemon=True)
        self._thread.start()

    def _close_listener(self):
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()

    def faults_snapshot(self) -> dict:
        with self.state.lock:
            snapshot = self.state.faults.snapshot()
        snapshot["refused_until"] = self.state.refused_until
        return snapshot

    def config_snapshot(self) -> dict:
        with self.state.lock:
            return {"processing_delay": self.config.processing_delay, "csrf": self.config.csrf,
                    "unauth_status": self.config.unauth_status, "users": dict(self.config.users),
                    "queues": list(self.state.queues), "basic_auth": self.config.basic_auth,
                    "max_form_bytes": self.config.max_form_bytes, "mode": self.config.mode,
                    "not_in_xqueue_group": list(self.config.not_in_xqueue_group)}

    def reconfigure(self, settings: dict):
        unknown = set(settings) - {"processing_delay", "csrf", "unauth_status", "users", "queues",
                                   "basic_auth", "max_form_bytes", "mode", "not_in_xqueue_group"}
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        if "unauth_status" in settings and settings["unauth_status"] not in (302, 401, 403):
            raise ValueError("'unauth_status' must be 302, 401 or 403")
        if "processing_delay" in settings and not isinstance(settings["processing_delay"], (int, float)):
            raise ValueError("'processing_delay' must be a number of seconds")
        if "users" in settings and not isinstance(settings["users"], dict):
            raise ValueError("'users' must be an object {name: password}")
        if "mode" in settings and settings["mode"] not in MODES:
            raise ValueError(f"'mode' must be one of {', '.join(MODES)}")
        outside = settings.get("not_in_xqueue_group", [])
        if not isinstance(outside, list) or not all(isinstance(name, str) for name in outside):
            raise ValueError("'not_in_xqueue_group' must be a list of user names")
        with self.state.lock:
            mode = settings.get("mode", self.config.mode)
            if mode != self.config.mode:
                if self.state.submissions:
                    raise ValueError("switch the mode on an empty stand-in (POST /_standin/reset first)")
                self.config.mode = mode
                self.state.sessions.clear()  # another server: no session carries over
                if self._default_delay:
                    self.config.processing_delay = DEFAULT_PROCESSING_DELAY[mode]
            if "processing_delay" in settings:
                self._default_delay = False
            if "not_in_xqueue_group" in settings:
                self.config.not_in_xqueue_group = list(outside)
            for key in ("processing_delay", "unauth_status", "basic_auth", "max_form_bytes"):
                if key in settings:
                    setattr(self.config, key, settings[key])
            if "csrf" in settings:
                self.config.csrf = bool(settings["csrf"])
            if "users" in settings:
                self.config.users = {str(k): str(v) for k, v in settings["users"].items()}
            for queue in settings.get("queues", []):
                if queue not in self.state.queues:
                    self.state.queues.append(queue)


# ----------------------------------------------------------------------------------------------
# Clients for tests, the demo and the benchmark
# ----------------------------------------------------------------------------------------------
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
        """With no arguments: the current switches. Otherwise merge them (see the module docstring)."""
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


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def _parse_args(argv):
    parser = argparse.ArgumentParser(
        description="XQueue stand-in server for tests, the demo and the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see --port-file)")
    parser.add_argument("--port-file", help="write the bound port here once listening; removed on exit")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="an XQueue user (repeatable; default lms:password)")
    parser.add_argument("--mode", choices=MODES, default="xqueue",
                        help="xqueue: the openedx/xqueue server; lms: the LMS's XQueue API (edx-submissions)")
    parser.add_argument("--processing-delay", type=float, default=None,
                        help="seconds before a pulled submission without a result is served again "
                             "(default 60 in xqueue mode, 300 in lms mode)")
    parser.add_argument("--not-in-xqueue-group", action="append", default=[], metavar="NAME",
                        help="lms mode: this user is not in the Django group 'xqueue' (repeatable)")
    parser.add_argument("--no-csrf", action="store_true", help="accept logins without the CSRF handshake")
    parser.add_argument("--unauth-status", type=int, choices=(302, 401, 403), default=302)
    parser.add_argument("--queue", action="append", default=[], metavar="NAME",
                        help="declare a queue (repeatable)")
    parser.add_argument("--basic-auth", metavar="NAME:PASSWORD",
                        help="demand HTTP basic auth on XQueue calls")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = parser.parse_args(argv)
    users = {}
    for spec in args.user or ["lms:password"]:
        name, sep, password = spec.partition(":")
        if not sep or not name:
            parser.error(f"--user takes NAME:PASSWORD, got '{spec}'")
        users[name] = password
    return args, StandinConfig(host=args.host, port=args.port, users=users,
                               processing_delay=args.processing_delay, csrf=not args.no_csrf,
                               unauth_status=args.unauth_status, queues=args.queue,
                               basic_auth=args.basic_auth, verbose=not args.quiet, mode=args.mode,
                               not_in_xqueue_group=args.not_in_xqueue_group)


def _write_port_file(path: str, port: int):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)


def main(argv=None) -> int:
    args, config = _parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    standin = XQueueStandin(config).start()
    config = standin.config
    sys.stderr.write(f"[standin] listening on {standin.base_url} ({config.mode} mode; users: "
                     f"{', '.join(config.users)}; csrf {'on' if config.csrf else 'off'}; "
                     f"processing delay {config.processing_delay}s)\n")
    if args.port_file:
        _write_port_file(args.port_file, standin.port)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        standin.stop()
        if args.port_file:
            try:
                os.remove(args.port_file)
            except OSError:
                pass
    sys.stderr.write("[standin] stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
