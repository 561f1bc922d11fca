"""The HTTP request handler: reading requests and writing replies, cookies and forms, per-request
counting and logging, applying fault switches, and openedx/xqueue's external API (/xqueue/ in
xqueue mode: login, logout, status, get_submission, get_queuelen, put_result). Control requests
(/_standin/) go to control.py, every other request in LMS mode to lms_handler.py.
README.md "xqueue mode".
"""

import base64
import email.parser
import email.policy
import http.cookies
import json
import secrets
import socket
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Dict, Optional

from . import control, lms_handler
from .faults import ENDPOINTS
from .state import StandinState, compose_reply, random_token

if TYPE_CHECKING:
    from .server import XQueueStandin

XQUEUE_PREFIX = "/xqueue/"
LOGIN_URL = "/xqueue/login"  # upstream settings.LOGIN_URL (no trailing slash)
MAX_BODY_BYTES = 64 * 1024 * 1024
HTML = "text/html; charset=utf-8"
JSON = "application/json"


class DropConnection(Exception):
    """Close the connection without writing a reply."""


class FormTooLarge(Exception):
    """Django's RequestDataTooBig: the view never runs, the client gets a 400."""


class Handler(BaseHTTPRequestHandler):
    """One client connection (kept alive); every request goes through _dispatch."""

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
        # Logged before the reply leaves: a client that reads it and asks the request log at once finds it.
        entry = getattr(self, "_entry", None)
        if entry is not None:
            entry["status"] = status
        try:
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            if entry is not None:
                entry["status"] = None  # never delivered: logged as dropped
            raise
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
            raise FormTooLarge()

    def _dispatch(self):
        self._sent_status = None
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError as err:
            self.close_connection = True
            self._reply(413, str(err), "text/plain")
            return
        if url.path.startswith(control.CONTROL_PREFIX):
            control.handle(self, url, body)
            return
        if self.standin.config.mode == "lms":
            lms_handler.handle(self, url, body)
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
        self._entry = entry
        try:
            work(entry)
        except FormTooLarge:
            entry["fault"] = "form too large"
            self._reply(400, "<h1>Bad Request (400)</h1>")
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        finally:
            self._entry = None
            entry["status"] = self._sent_status
            entry["finished"] = time.time()  # done with it: answered, dropped, or its reply lost
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
        (False, lose_reply); a drop raises DropConnection. `error_reply(status)` may give the
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
            raise DropConnection()
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
        raise DropConnection()

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
            raise DropConnection()
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
            token = cookies.get("csrftoken") or random_token()
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
            self._csrf_cookie(random_token())]

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
