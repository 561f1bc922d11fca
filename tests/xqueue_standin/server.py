"""The server: the listening socket and its connections (Server), the stand-in's lifecycle on a
background thread (XQueueStandin: start, stop, refuse and re-accept connections, configuration
snapshots and changes) and the command-line entry point (main; `python3 tests/xqueue_standin` or
`python3 -m xqueue_standin` with tests/ on the path). README.md "Run".
"""

import argparse
import dataclasses
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Optional

from . import lms_state
from .clients import StandinClient
from .handler import Handler
from .state import MODES, StandinConfig, StandinState

DEFAULT_PROCESSING_DELAY = {"xqueue": 60.0, "lms": lms_state.DEFAULT_PROCESSING_DELAY}


class Server(ThreadingHTTPServer):
    """The listening socket; tracks its open connections so refuse_connections can cut them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, standin: "XQueueStandin"):
        self.standin = standin
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

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
        self._server: Optional[Server] = None
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
        self._server = Server((self.config.host, port), self)
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
