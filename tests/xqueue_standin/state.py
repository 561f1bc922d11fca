"""The stand-in's state: its configuration, queues, sessions, submissions, stored files, results,
rejected posts and request counters, behind one lock (StandinState), and the xqueue-mode decisions
on them (get_submission, get_queuelen, put_result). The fault switches are in faults.py, the LMS
mode's state machine in lms_state.py; both work on this state. The contract is README.md.
"""

import dataclasses
import hashlib
import itertools
import json
import secrets
import string
import threading
import time
from collections import deque
from typing import Dict, List, Optional

from .faults import Faults

MODES = ("xqueue", "lms")
REQUEST_LOG_CAP = 50000


def compose_reply(success: bool, content) -> str:
    """The upstream reply: json.dumps with default separators, return_code 0 or 1."""
    return json.dumps({"return_code": 0 if success else 1, "content": content})


def random_token(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def is_valid_result_body(parsed) -> bool:
    """True when an xqueue_body holds what the LMS expects: {"correct": bool, "score": number, "msg": str}."""
    return (isinstance(parsed, dict) and isinstance(parsed.get("correct"), bool)
            and isinstance(parsed.get("score"), (int, float)) and not isinstance(parsed.get("score"), bool)
            and isinstance(parsed.get("msg"), str))


# ----------------------------------------------------------------------------------------------
# Configuration, stored files, submissions
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
class StoredFile:
    """A file given at submit time, with its optional failure: an HTTP status and/or a delay."""
    data: bytes
    http_error: Optional[int] = None
    delay: float = 0.0


def file_from_spec(name: str, spec: dict) -> StoredFile:
    content = spec.get("content", "")
    http_error, delay = spec.get("http_error"), spec.get("delay", 0)
    if http_error is not None and (isinstance(http_error, bool) or not isinstance(http_error, int)
                                   or not 100 <= http_error <= 599):
        raise ValueError(f"file '{name}': 'http_error' needs an HTTP status between 100 and 599")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError(f"file '{name}': 'delay' needs a number of seconds")
    data = content.encode("utf-8") if isinstance(content, str) else b""
    return StoredFile(data, http_error, float(delay))


@dataclasses.dataclass
class Submission:
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
        """GET /_standin/submissions/N: the common fields, the summary state and (LMS mode) its own."""
        if self.lms:
            return dict(self._describe_common(), **self._describe_lms(now, delay))
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

    def _describe_lms(self, now: float, delay: float) -> Dict[str, object]:
        """The LMS-only fields, and the summary state of an ExternalGraderDetail status."""
        stale = self.status == "pulled" and self.status_time < now - delay
        if self.status in ("pending", "retry") or stale:
            state = "waiting"
        else:
            state = {"pulled": "in_progress", "graded": "done", "failed": "failed"}[self.status]
        return {"state": state, "status": self.status, "num_failures": self.num_failures,
                "points_possible": self.points_possible, "put_results": [dict(p) for p in self.put_results]}


# ----------------------------------------------------------------------------------------------
# The state
# ----------------------------------------------------------------------------------------------
class StandinState:
    """Everything the server knows, behind one lock; all decisions about XQueue replies live here."""

    def __init__(self, config: StandinConfig):
        self.config = config
        self.lock = threading.Lock()
        self.queues: List[str] = list(dict.fromkeys(config.queues))
        self.sessions: Dict[str, str] = {}
        self.submissions: Dict[int, Submission] = {}
        self.files: Dict[tuple, StoredFile] = {}  # (submission id, name): xqueue mode
        self.media: Dict[tuple, StoredFile] = {}  # (queue, uuid): LMS mode
        self.results: List[dict] = []
        self.rejected: List[dict] = []
        self.faults = Faults()
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
            self.submissions[sid] = Submission(sid, queue, xqueue_body, xqueue_files, time.time(), **extra)

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
                 "return_code": None, "fault": None, "finished": None}
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
        session = random_token(32).lower()
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
            self.reject(None, header, body, "Incorrect reply format")
            return compose_reply(False, "Incorrect reply format")
        try:
            submission_id = int(header_dict["submission_id"])
        except (TypeError, ValueError):
            self.reject(None, header, body, "non-integer submission_id (500)")
            return None
        key = header_dict["submission_key"]
        with self.lock:
            sub = self.submissions.get(submission_id)
            if sub is None:
                self.reject_locked(submission_id, header, body, "Submission does not exist")
                return compose_reply(False, "Submission does not exist")
            if self.faults.take("incorrect_key", "put_result") or not sub.pullkey or key != sub.pullkey:
                sub.rejected_put_results += 1
                self.reject_locked(submission_id, header, body, "Incorrect key for submission")
                return compose_reply(False, "Incorrect key for submission")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            self.results.append({"index": len(self.results), "submission_id": sub.id, "queue": sub.queue,
                                 "key": key, "xqueue_header": header, "xqueue_body": body, "body": parsed,
                                 "body_valid": is_valid_result_body(parsed), "duplicate": sub.retired,
                                 "time": time.time()})
            sub.accepted_results += 1
            sub.retired = True
            return compose_reply(True, "")

    def reject(self, submission_id, header, body, reason):
        with self.lock:
            self.reject_locked(submission_id, header, body, reason)

    def reject_locked(self, submission_id, header, body, reason):
        """Record a put_result that stored no result (GET /_standin/results "rejected"); lock held."""
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
