"""LMS mode of the XQueue stand-in: the pull API the LMS serves itself at /xqueue/.

Models openedx/edx-submissions `XQueueViewSet` (Django REST framework, session authentication,
CSRF enforced for logged-in sessions) and its `ExternalGraderDetail` state machine. The contract
is the "LMS mode" section of xqueue_standin.py's module docstring; this module only holds the code.
It is imported by xqueue_standin.py (the entry point) and never imports it back: it works on the
request handler and the StandinState passed in. Standard library only.
"""

import dataclasses
import json
import re
import secrets
import string
import time
import urllib.parse
import uuid
from typing import Dict, Optional, Tuple

XQUEUE_PREFIX = "/xqueue/"
MEDIA_PREFIX = "/media/"
# The view set's actions and the methods each accepts (DRF answers 405 for any other).
ENDPOINT_METHODS = {"login": ("GET", "POST"), "logout": ("POST",), "get_submission": ("GET",),
                    "put_result": ("POST",), "status": ("POST",)}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
DEFAULT_PROCESSING_DELAY = 300.0  # the view's hard-coded 5 minutes for a pulled submission
MAX_SCORE_UPDATE_RETRIES = 5
MAX_POINTS = 2147483647  # PositiveIntegerField
JSON = "application/json"
HTML = "text/html; charset=utf-8"
NOT_FOUND_PAGE = "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
SERVER_ERROR_PAGE = "<h1>Server Error (500)</h1>"
NOT_AUTHENTICATED = "Authentication credentials were not provided."
NOT_PERMITTED = "You do not have permission to perform this action."
CSRF_CHARS = string.ascii_letters + string.digits
# ExternalGraderDetail.VALID_TRANSITIONS, with the LMS's "retired" called "graded" here.
TRANSITIONS = {"pending": ("pulled",), "pulled": ("graded", "failed", "retry"), "retry": ("graded", "pulled"),
               "failed": ("pending",), "graded": ()}


def reply(success: bool, content) -> dict:
    return {"return_code": 0 if success else 1, "content": content}


def render(payload) -> bytes:
    """DRF's JSONRenderer: compact separators, UTF-8 rather than \\u escapes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
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


def serve_file(handler, stored: Optional[StoredFile]):
    """Answer a GET for a stored file: 404 when unknown, else its delay, then its status or content."""
    if stored is None:
        handler._reply(404, NOT_FOUND_PAGE)
        return
    if stored.delay:
        time.sleep(stored.delay)
    if stored.http_error:
        handler._reply(stored.http_error, f"<h1>Error ({stored.http_error})</h1>")
        return
    handler._reply(200, stored.data, "application/octet-stream")


# ----------------------------------------------------------------------------------------------
# Submit: what the LMS stores, and the body it rebuilds from it
# ----------------------------------------------------------------------------------------------
def build_submission(standin, state, sid: int, queue: str, payload: dict) -> Tuple[str, str, dict]:
    """(xqueue_body, xqueue_files, extra _Submission fields) for a control-API submit in LMS mode."""
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
# HTTP: routing, DRF's authentication / permission / method checks, the views
# ----------------------------------------------------------------------------------------------
def handle(handler, url, body: bytes):
    """Every non-control request in LMS mode."""
    path = url.path
    if path.startswith(MEDIA_PREFIX):
        rest = path[len(MEDIA_PREFIX):]
        parts = rest.split("/")
        queue = urllib.parse.unquote(parts[0]) if len(parts) == 2 else None
        handler._logged("media", queue, lambda entry: _media(handler, parts, entry))
        return
    if not path.startswith(XQUEUE_PREFIX):
        handler._reply(404, NOT_FOUND_PAGE)
        return
    name = path[len(XQUEUE_PREFIX):].rstrip("/")
    if name in ENDPOINT_METHODS and not path.endswith("/"):  # APPEND_SLASH, before any view; not logged
        location = path + "/" + ("?" + url.query if url.query else "")
        handler._reply(301, "", headers=[("Location", location)])
        return
    query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    endpoint = name or "(root)"
    handler._logged(endpoint, query.get("queue_name"),
                    lambda entry: _xqueue(handler, endpoint, query, body, entry))


def _media(handler, parts, entry: dict):
    handled, lose_reply = handler._apply_faults("media", entry)
    if handled:
        return
    stored = None
    if len(parts) == 2 and handler.command == "GET":
        with handler.state.lock:
            stored = handler.state.media.get((urllib.parse.unquote(parts[0]), parts[1]))
    if lose_reply:
        handler._lose_reply(entry)
    serve_file(handler, stored)


# What the view itself answers with these statuses (an http_error fault reuses them).
VIEW_REFUSALS = {("put_result", 400): "Incorrect reply format",
                 ("put_result", 403): "Incorrect key for submission",
                 ("put_result", 404): "Submission does not exist",
                 ("put_result", 409): "Submission is currently being processed",
                 ("get_submission", 400): "'get_submission' must provide parameter 'queue_name'"}


def _xqueue(handler, endpoint: str, query: dict, body: bytes, entry: dict):
    def error_reply(status):
        reason = VIEW_REFUSALS.get((endpoint, status))
        if reason is None:
            return None
        entry["return_code"] = 1
        return render(reply(False, reason)), JSON

    handled, lose_reply = handler._apply_faults(endpoint, entry, error_reply)
    if handled:
        return
    if not handler._basic_auth_ok():
        handler._reply(401, "<h1>401 Authorization Required</h1>",
                       headers=[("WWW-Authenticate", 'Basic realm="xqueue"')])
        return
    if endpoint not in ENDPOINT_METHODS:
        handler._reply(404, NOT_FOUND_PAGE)
        return
    status, payload, headers, cookies = _view(handler, endpoint, query, body)
    if isinstance(payload, dict):
        entry["return_code"] = payload.get("return_code")
        data, content_type = render(payload), JSON
    else:
        data, content_type = payload, HTML
    if lose_reply:
        handler._lose_reply(entry)
    handler._reply(status, data, content_type, headers=headers, cookies=cookies)


def _view(handler, endpoint: str, query: dict, body: bytes):
    """(status, dict | html, headers, cookies): DRF's checks in their order, then the action."""
    state, config = handler.state, handler.standin.config
    cookies = handler._cookies()
    user = state.session_user(cookies.get("sessionid"))
    if user is not None and user not in config.users:
        user = None  # the account is gone: the session no longer authenticates
    method = handler.command
    # SessionAuthentication enforces CSRF only for a logged-in session (so never on a first login).
    if user is not None and config.csrf and method not in SAFE_METHODS:
        reason = csrf_failure(handler, cookies, body)
        if reason:
            return 403, {"detail": "CSRF Failed: " + reason}, [], []
    if endpoint != "login":  # IsXQueueUser; login is AllowAny
        if user is None:
            return 403, {"detail": NOT_AUTHENTICATED}, [], []
        if user in config.not_in_xqueue_group:
            return 403, {"detail": NOT_PERMITTED}, [], []
    allowed = ENDPOINT_METHODS[endpoint]
    if method not in allowed:
        allow = list(allowed) + (["HEAD"] if "GET" in allowed else []) + ["OPTIONS"]  # DRF's order
        return 405, {"detail": f'Method "{method}" not allowed.'}, [("Allow", ", ".join(allow))], []
    if endpoint == "login":
        return _login(handler, cookies, body)
    if endpoint == "logout":
        state.close_session(cookies.get("sessionid"))
        expired = 'sessionid=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax'
        return 200, reply(True, "Goodbye"), [], [expired]
    if endpoint == "status":
        return 200, "return_codecontent", [], []  # upstream passes a dict to HttpResponse: its keys
    if endpoint == "get_submission":
        queue_name = query.get("queue_name")
        if not queue_name:
            return 400, reply(False, "'get_submission' must provide parameter 'queue_name'"), [], []
        status, payload = get_submission(state, queue_name)
        return status, payload, [], []
    data, error = _request_data(handler, body)
    if error:
        return error[0], error[1], [], []
    status, payload = put_result(state, data)
    return status, payload, [], []


def _login(handler, cookies: dict, body: bytes):
    if handler.command == "GET":  # get_token(): keep a well-formed cookie, else make one
        token = cookies.get("csrftoken") or ""
        token = _new_secret() if _token_format_error(token) else _unmask(token)
        return 200, reply(True, ""), [], [handler._csrf_cookie(token)]
    data, error = _request_data(handler, body)
    if error:
        return error[0], error[1], [], []
    if not isinstance(data, dict) or "username" not in data or "password" not in data:
        return 400, reply(False, "Insufficient login info"), [], []
    username, password = data["username"], data["password"]
    if not (isinstance(username, str) and isinstance(password, str)
            and handler.state.authenticate(username, password)):
        return 401, reply(False, "Incorrect login credentials"), [], []
    session = handler.state.open_session(username, cookies.get("sessionid"))
    # django.contrib.auth.login(): a new session key and a rotated CSRF secret.
    return 200, reply(True, "Logged in"), [], [
        f"sessionid={session}; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax",
        handler._csrf_cookie(_new_secret())]


def _request_data(handler, body: bytes):
    """DRF's request.data: (data, None) or (None, (status, error payload))."""
    if not body:
        return {}, None
    content_type = handler.headers.get("Content-Type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return handler._form(body), None
    if media_type == "application/json":
        handler._check_form_size(body)
        try:
            return json.loads(body.decode("utf-8")), None
        except ValueError as err:
            return None, (400, {"detail": f"JSON parse error - {err}"})
    return None, (415, {"detail": f'Unsupported media type "{content_type}" in request.'})


# ----------------------------------------------------------------------------------------------
# CSRF (Django's CsrfViewMiddleware as DRF's SessionAuthentication runs it)
# ----------------------------------------------------------------------------------------------
def _new_secret() -> str:
    return "".join(secrets.choice(CSRF_CHARS) for _ in range(32))


def _token_format_error(token: str) -> Optional[str]:
    if len(token) not in (32, 64):
        return "has incorrect length"
    if any(c not in CSRF_CHARS for c in token):
        return "has invalid characters"
    return None


def _unmask(token: str) -> str:
    """A 64-character token is a mask followed by the masked secret; 32 characters are the secret."""
    if len(token) == 32:
        return token
    mask, cipher = token[:32], token[32:]
    return "".join(CSRF_CHARS[(CSRF_CHARS.index(c) - CSRF_CHARS.index(m)) % len(CSRF_CHARS)]
                   for c, m in zip(cipher, mask))


def csrf_failure(handler, cookies: dict, body: bytes) -> Optional[str]:
    """Django's reason for refusing an unsafe request, or None. The Origin header is checked when
    sent; otherwise the Referer is required and must name this host, as Django does over HTTPS
    (a production LMS), although the stand-in speaks plain HTTP."""
    host = handler.headers.get("Host", "")
    origin = handler.headers.get("Origin")
    if origin is not None:
        if origin != f"http://{host}":
            return f"Origin checking failed - {origin} does not match any trusted origins."
    else:
        referer = handler.headers.get("Referer")
        if not referer:
            return "Referer checking failed - no Referer."
        parts = urllib.parse.urlsplit(referer)
        if not parts.scheme or not parts.netloc:
            return "Referer checking failed - Referer is malformed."
        if parts.netloc != host:
            return f"Referer checking failed - {referer} does not match any trusted origins."
    cookie = cookies.get("csrftoken")
    if cookie is None:
        return "CSRF cookie not set."
    problem = _token_format_error(cookie)
    if problem:
        return f"CSRF cookie {problem}."
    token, source = "", "POST"
    if handler.command == "POST":
        token = handler._form(body).get("csrfmiddlewaretoken", "")
    if token == "":
        token = handler.headers.get("X-CSRFToken")
        source = "the 'X-Csrftoken' HTTP header"
        if token is None:
            return "CSRF token missing."
    problem = _token_format_error(token)
    if problem:
        return f"CSRF token from {source} {problem}."
    if not secrets.compare_digest(_unmask(token), _unmask(cookie)):
        return f"CSRF token from {source} incorrect."
    return None


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


def _result_body_valid(parsed) -> bool:
    return (isinstance(parsed, dict) and isinstance(parsed.get("correct"), bool)
            and isinstance(parsed.get("score"), (int, float)) and not isinstance(parsed.get("score"), bool)
            and isinstance(parsed.get("msg"), str))


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
            return _rejected_locked(state, submission_id, header, body, "Submission does not exist",
                                    (404, reply(False, "Submission does not exist")))
        outcome = _settle(state, sub, key, score)
        sub.put_results.append({"time": time.time(), "key": key, "score": score, "status": outcome[0],
                                "outcome": outcome[1]})
        if outcome[1] == "graded":
            state.results.append({"index": len(state.results), "submission_id": sub.id, "queue": sub.queue,
                                  "key": key, "xqueue_header": header, "xqueue_body": body, "body": parsed,
                                  "body_valid": _result_body_valid(parsed), "duplicate": False,
                                  "points_earned": points_earned(score),
                                  "points_possible": sub.points_possible, "time": time.time()})
            sub.accepted_results += 1
        else:
            if outcome[1] == "incorrect_key":
                sub.rejected_put_results += 1
            _rejected_locked(state, submission_id, header, body, outcome[1], None)
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
    with state.lock:
        return _rejected_locked(state, submission_id, header, body, reason, answer)


def _rejected_locked(state, submission_id, header, body, reason: str, answer):
    state.rejected.append({"submission_id": submission_id, "xqueue_header": header, "xqueue_body": body,
                           "reason": reason, "time": time.time()})
    return answer


def describe(sub, now: float, delay: float) -> Dict[str, object]:
    """The LMS-only fields of GET /_standin/submissions/N, and the summary state."""
    if sub.status in ("pending", "retry") or (sub.status == "pulled" and sub.status_time < now - delay):
        state = "waiting"
    else:
        state = {"pulled": "in_progress", "graded": "done", "failed": "failed"}[sub.status]
    return {"state": state, "status": sub.status, "num_failures": sub.num_failures,
            "points_possible": sub.points_possible, "put_results": [dict(p) for p in sub.put_results]}
