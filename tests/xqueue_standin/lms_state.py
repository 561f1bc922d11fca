"""LMS mode's state machine: openedx/edx-submissions' ExternalGraderDetail (pending -> pulled ->
graded | retry | failed) behind get_submission and put_result, integer-point scores, and the
submission the LMS stores and the xqueue_body it rebuilds at submit time. Works on the StandinState
passed in; replies are dicts for lms_handler.py to render. README.md "LMS mode".
"""

import json
import re
import time
import urllib.parse
import uuid
from typing import Optional, Tuple

from .state import file_from_spec, is_valid_result_body

MEDIA_PREFIX = "/media/"
DEFAULT_PROCESSING_DELAY = 300.0  # the view's hard-coded 5 minutes for a pulled submission
MAX_SCORE_UPDATE_RETRIES = 5
MAX_POINTS = 2147483647  # PositiveIntegerField
SERVER_ERROR_PAGE = "<h1>Server Error (500)</h1>"
# ExternalGraderDetail.VALID_TRANSITIONS, with the LMS's "retired" called "graded" here.
TRANSITIONS = {"pending": ("pulled",), "pulled": ("graded", "failed", "retry"), "retry": ("graded", "pulled"),
               "failed": ("pending",), "graded": ()}


def reply(success: bool, content) -> dict:
    return {"return_code": 0 if success else 1, "content": content}


# ----------------------------------------------------------------------------------------------
# Submit: what the LMS stores, and the body it rebuilds from it
# ----------------------------------------------------------------------------------------------
def build_submission(standin, state, sid: int, queue: str, payload: dict) -> Tuple[str, str, dict]:
    """(xqueue_body, xqueue_files, extra Submission fields) for a control-API submit in LMS mode."""
    if "xqueue_body" in payload:
        raise ValueError("LMS mode rebuilds xqueue_body: give student_response, grader_payload, student_info")
    grader_payload = payload.get("grader_payload", "")
    if isinstance(grader_payload, str):
        try:
            grader_payload = json.loads(grader_payload) if grader_payload else {}
        except ValueError:
            grader_payload = None
    if not isinstance(grader_payload, dict):
        raise ValueError("LMS mode: 'grader_payload' must be a JSON object (the LMS parses it)")
    student_info = payload.get("student_info") or {}
    if isinstance(student_info, str):
        student_info = json.loads(student_info)
    if not isinstance(student_info, dict):
        raise ValueError("'student_info' must be an object")
    points_possible = payload.get("points_possible", 1)
    if isinstance(points_possible, bool) or not isinstance(points_possible, int) or points_possible < 0:
        raise ValueError("'points_possible' must be a non-negative integer")
    created = time.time()
    body = {"grader_payload": json.dumps({"grader": str(grader_payload.get("grader", ""))}),
            "student_info": json.dumps({
                "anonymous_student_id": str(student_info.get("anonymous_student_id") or f"student-{sid}"),
                "submission_time": str(int(created)), "random_seed": 1}),
            "student_response": payload.get("student_response", "")}
    files = payload.get("files") or {}
    if not isinstance(files, dict):
        raise ValueError("'files' must be an object {name: url | {\"content\": text}}")
    urls = {}
    for name, spec in files.items():
        if not isinstance(spec, dict):
            urls[name] = str(spec)
            continue
        stored, file_uuid = file_from_spec(name, spec), str(uuid.uuid4())
        with state.lock:
            state.media[(queue, file_uuid)] = stored
        path = f"{MEDIA_PREFIX}{urllib.parse.quote(queue)}/{file_uuid}"
        urls[name] = standin.base_url + path if payload.get("files_absolute") else path
    return json.dumps(body), json.dumps(urls), {"lms": True, "points_possible": points_possible,
                                                "status_time": time.monotonic()}


# ----------------------------------------------------------------------------------------------
# The state machine (ExternalGraderDetail) behind get_submission and put_result
# ----------------------------------------------------------------------------------------------
def get_submission(state, queue_name: str):
    """Oldest (by status time) of pending, retry and stale pulled submissions; a new key unless
    it was already pulled. An unknown queue is simply empty."""
    now = time.monotonic()
    with state.lock:
        stale_before = now - state.config.processing_delay
        candidates = [s for s in state.submissions.values()
                      if s.lms and s.queue == queue_name
                      and (s.status in ("pending", "retry")
                           or (s.status == "pulled" and s.status_time < stale_before))]
        if not candidates:
            return 200, reply(False, f"Queue '{queue_name}' is empty")
        sub = min(candidates, key=lambda s: (s.status_time, s.id))
        if sub.status != "pulled":
            sub.status, sub.status_time, sub.pull_time = "pulled", now, now
            sub.pullkey = str(uuid.uuid4())
            sub.keys_issued.append(sub.pullkey)
        sub.pulled_count += 1
        sub.last_pull_wall = time.time()
        header = json.dumps({"submission_id": sub.id, "submission_key": sub.pullkey})
        content = {"xqueue_header": header, "xqueue_body": sub.xqueue_body, "xqueue_files": sub.xqueue_files}
        return 200, reply(True, json.dumps(content))


def points_earned(value) -> Optional[int]:
    """DRF IntegerField(min_value=0): 2, 2.0 and "2" are 2; 0.5, True, None, -1 are invalid (None)."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and len(value) > 1000):
        return None
    try:
        number = int(re.sub(r"\.0*\s*$", "", str(value)))
    except ValueError:
        return None
    return number if 0 <= number <= MAX_POINTS else None


def put_result(state, data):
    """(status, reply dict | error page). Validation follows the view's order; a 500 changes nothing
    (the view's transaction rolls back)."""
    bad_format = (400, reply(False, "Incorrect reply format"))
    header = body = None
    if isinstance(data, dict):
        header, body = data.get("xqueue_header"), data.get("xqueue_body")
    if not isinstance(data, dict) or "xqueue_header" not in data or "xqueue_body" not in data:
        return _rejected(state, None, header, body, "Incorrect reply format", bad_format)
    try:
        header_dict = json.loads(header)
    except (TypeError, ValueError):
        return _rejected(state, None, header, body, "Incorrect reply format", bad_format)
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return _rejected(state, None, header, body, "Incorrect reply format", bad_format)
    if not isinstance(parsed, dict):  # score.get() raises: an unhandled error
        return _rejected(state, None, header, body, "xqueue_body is not a JSON object (500)",
                         (500, SERVER_ERROR_PAGE))
    if not isinstance(header_dict, dict) or not {"submission_id", "submission_key"} <= header_dict.keys():
        return _rejected(state, None, header, body, "Incorrect reply format", bad_format)
    try:
        submission_id = int(header_dict["submission_id"])
    except (TypeError, ValueError, OverflowError):
        return _rejected(state, None, header, body, "non-integer submission_id (500)",
                         (500, SERVER_ERROR_PAGE))
    key, score = header_dict["submission_key"], parsed.get("score")
    with state.lock:
        sub = state.submissions.get(submission_id)
        if sub is None or not sub.lms:
            state.reject_locked(submission_id, header, body, "Submission does not exist")
            return 404, reply(False, "Submission does not exist")
        outcome = _settle(state, sub, key, score)
        sub.put_results.append({"time": time.time(), "key": key, "score": score, "status": outcome[0],
                                "outcome": outcome[1]})
        if outcome[1] == "graded":
            state.results.append({"index": len(state.results), "submission_id": sub.id, "queue": sub.queue,
                                  "key": key, "xqueue_header": header, "xqueue_body": body, "body": parsed,
                                  "body_valid": is_valid_result_body(parsed), "duplicate": False,
                                  "points_earned": points_earned(score),
                                  "points_possible": sub.points_possible, "time": time.time()})
            sub.accepted_results += 1
        else:
            if outcome[1] == "incorrect_key":
                sub.rejected_put_results += 1
            state.reject_locked(submission_id, header, body, outcome[1])
        return outcome[0], outcome[2]


def _settle(state, sub, key, score):
    """(status, outcome, reply) for a well-formed put_result on an existing submission."""
    if state.faults.take("conflict", "put_result"):  # the row is locked by a concurrent put_result
        return 409, "conflict", reply(False, "Submission is currently being processed")
    if state.faults.take("incorrect_key", "put_result") or not sub.pullkey or key != sub.pullkey:
        return 403, "incorrect_key", reply(False, "Incorrect key for submission")
    if points_earned(score) is not None and "graded" in TRANSITIONS[sub.status]:
        _transition(sub, "graded")
        return 200, "graded", reply(True, "")
    # set_score refused the score (or the submission cannot be retired): count a failure.
    target = "failed" if sub.num_failures + 1 >= MAX_SCORE_UPDATE_RETRIES else "retry"
    if target not in TRANSITIONS[sub.status]:
        return 500, f"invalid transition {sub.status} -> {target} (500)", SERVER_ERROR_PAGE
    _transition(sub, target)
    sub.num_failures += 1
    return 200, target, reply(True, "")


def _transition(sub, status: str):
    sub.status, sub.status_time = status, time.monotonic()


def _rejected(state, submission_id, header, body, reason: str, answer):
    state.reject(submission_id, header, body, reason)
    return answer
