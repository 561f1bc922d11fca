"""LMS mode's HTTP side: the pull API the LMS serves itself at /xqueue/ (openedx/edx-submissions
XQueueViewSet: Django REST framework, session authentication, CSRF enforced for logged-in sessions)
and its /media/ file URLs. Routing, DRF's authentication / permission / method checks in their
order, the views, Django's CSRF checks; the state machine behind the views is lms_state.py.
Called by handler.py for every non-control request in LMS mode. README.md "LMS mode".
"""

import json
import secrets
import string
import time
import urllib.parse
from typing import Optional

from . import lms_state
from .lms_state import MEDIA_PREFIX, reply
from .state import StoredFile

XQUEUE_PREFIX = "/xqueue/"
# The view set's actions and the methods each accepts (DRF answers 405 for any other).
ENDPOINT_METHODS = {"login": ("GET", "POST"), "logout": ("POST",), "get_submission": ("GET",),
                    "put_result": ("POST",), "status": ("POST",)}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
JSON = "application/json"
HTML = "text/html; charset=utf-8"
NOT_FOUND_PAGE = "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
NOT_AUTHENTICATED = "Authentication credentials were not provided."
NOT_PERMITTED = "You do not have permission to perform this action."
CSRF_CHARS = string.ascii_letters + string.digits


def render(payload) -> bytes:
    """DRF's JSONRenderer: compact separators, UTF-8 rather than \\u escapes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
        status, payload = lms_state.get_submission(state, queue_name)
        return status, payload, [], []
    data, error = _request_data(handler, body)
    if error:
        return error[0], error[1], [], []
    status, payload = lms_state.put_result(state, data)
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
