"""End-to-end harness: the XQueue stand-in, a config root, the watcher binary and the real engine.

Every check here uses real parts: the stand-in (tests/xqueue_standin/) speaks XQueue over HTTP,
the watcher binary under test (XQW_BINARY) grades through the Docker engine, and containers run
the Python grader image built by scripts/images. A missing part fails the test with the reason.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("XQW_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))

import config_root  # noqa: E402
import xqueue_standin  # noqa: E402

BINARY = os.environ.get("XQW_BINARY", os.path.join(SOURCE_DIR, "build", "xqueue-watcher"))
GRADER_IMAGE = os.environ.get("XQW_PYTHON_IMAGE", "xqueue-watcher/python-grader:latest")
DOCKER_SOCKET = "/var/run/docker.sock"
DEMO_COURSE = os.path.join(SOURCE_DIR, "examples", "demo-course")
WATCHER_LABEL = "org.openedx.xqueue-watcher.watcher"


def engine_request(method, path, body=None):
    """One request to the engine over its unix socket (the tests' own view, not the watcher's); `body`
    is sent as JSON."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} /v1.41{path} HTTP/1.0\r\nHost: docker\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(DOCKER_SOCKET)
        sock.sendall((head + "\r\n").encode() + payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, body


def require_engine_and_image(test):
    try:
        status, _ = engine_request("GET", "/_ping")
    except OSError as error:
        test.fail(f"no Docker engine on {DOCKER_SOCKET} (scripts/engine starts one): {error}")
    test.assertEqual(status, 200, "the Docker engine does not answer /_ping")
    status, _ = engine_request("GET", f"/images/{GRADER_IMAGE}/json")
    test.assertEqual(status, 200, f"image {GRADER_IMAGE} is missing (scripts/images builds it)")
    test.assertTrue(os.access(BINARY, os.X_OK), f"watcher binary {BINARY} is missing (build first)")


def containers_labelled(watcher_id):
    filters = json.dumps({"label": [f"{WATCHER_LABEL}={watcher_id}"]})
    from urllib.parse import quote
    status, body = engine_request("GET", "/containers/json?all=1&filters=" + quote(filters))
    assert status == 200, body
    return json.loads(body)


SUBMISSION_LABEL = "org.openedx.xqueue-watcher.submission"
MADE_AHEAD = ("waiting", "precreated")  # submission label of containers prepared before their submission


def has_job(container):
    """True once the container's job directory holds job.json (a container prepared ahead gets it late)."""
    mounts = {m["Destination"]: m["Source"] for m in container.get("Mounts", [])}
    return any(os.path.exists(os.path.join(source, "job.json"))
               for destination, source in mounts.items() if destination.endswith("/job"))


def used_containers(watcher_id):
    """The watcher's containers that have had a job: everything but those prepared ahead and unused."""
    return [c for c in containers_labelled(watcher_id)
            if c["Labels"].get(SUBMISSION_LABEL) not in MADE_AHEAD or has_job(c)]


def grading_containers(watcher_id):
    """Running containers that have their job; those started ahead and still waiting are not grading."""
    return [c for c in used_containers(watcher_id) if c["State"] == "running"]


def write_config_root(root, port, queues, poll_interval="0.2s", shutdown_grace="30s", manager_extra="",
                      requests_timeout="5s", login_poll_interval="0.5s", server_extra=None):
    """A config root for the tests: short intervals, the password from XQW_TEST_PASSWORD.
    `server_extra`: more keys of the XQueue server, e.g. {"api": "lms"}."""
    config_root.write_config_root(root, port, queues, poll_interval=poll_interval,
                                  login_poll_interval=login_poll_interval,
                                  requests_timeout=requests_timeout, shutdown_grace=shutdown_grace,
                                  password_variable="XQW_TEST_PASSWORD", manager_extra=manager_extra,
                                  server_extra=server_extra)


class WatcherProcess:
    """The watcher binary as a child process, its log kept for failure messages."""

    def __init__(self, config_root, watcher_id, extra_args=(), extra_env=None):
        self.watcher_id = watcher_id
        self.log_path = os.path.join(config_root, "watcher.log")
        env = dict(os.environ, XQW_TEST_PASSWORD="secret-pw", **(extra_env or {}))
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [BINARY, "-d", config_root, "--watcher-id", watcher_id, "--log-level", "debug", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as log:
            return log.read().decode(errors="replace")

    def wait_ready(self, timeout=60):
        """Until the watcher's workers run (its log says so)."""
        deadline = time.time() + timeout
        while "watching " not in self.output():
            if self.process.poll() is not None or time.time() > deadline:
                raise AssertionError("the watcher did not start:\n" + self.output()[-4000:])
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("watcher did not exit within %ss after %s:\n%s" % (timeout, sig, self.output()[-4000:]))
        finally:
            self.log.close()


def served_metrics_port(watcher, timeout=60):
    """The port a watcher started with `--metrics-port 0` says it serves /metrics on."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(r"serving /metrics, /healthz and /readyz on [\d.]+:(\d+)", watcher.output())
        if found:
            return int(found.group(1))
        if watcher.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("the watcher did not say where it serves metrics:\n" + watcher.output()[-3000:])


class WatcherTestCase(unittest.TestCase):
    """One stand-in and one watcher per test class; queues from `QUEUES`."""

    QUEUES = {}
    SHUTDOWN_GRACE = "30s"
    PROCESSING_DELAY = 60
    MANAGER_EXTRA = ""  # more xqwatcher.yaml lines
    WATCHER_ARGS = ()  # more command-line arguments
    STANDIN_MODE = "xqueue"  # "lms": the stand-in plays the LMS's XQueue API (and the server gets api: lms)
    NOT_IN_XQUEUE_GROUP = ()  # LMS mode: users outside the Django group "xqueue" at start
    SERVER_EXTRA = None  # more keys of the XQueue server; None: {"api": "lms"} in LMS mode, else none
    LOGIN_POLL_INTERVAL = "0.5s"
    WATCHER_ENV = {}  # more environment variables for the watcher
    CONF_D_FILES = {}  # more conf.d files, name -> text (e.g. the Python watcher's JSON queues)
    STANDIN_BASIC_AUTH = None  # "user:pass" the stand-in demands on every XQueue request (nginx in front)
    POLL_INTERVAL = "0.2s"

    @classmethod
    def before_watcher(cls):
        """Runs once the stand-in answers and before the watcher starts (e.g. to set faults)."""

    @classmethod
    def setUpClass(cls):
        require_engine_and_image(cls())
        cls.tmp = tempfile.mkdtemp(prefix="xqw-e2e-")
        cls.standin = xqueue_standin.XQueueStandin(
            xqueue_standin.StandinConfig(port=0, users={"lms": "secret-pw"},
                                         processing_delay=cls.PROCESSING_DELAY, verbose=False,
                                         mode=cls.STANDIN_MODE, basic_auth=cls.STANDIN_BASIC_AUTH,
                                         not_in_xqueue_group=list(cls.NOT_IN_XQUEUE_GROUP)))
        cls.standin.start()
        cls.xqueue = cls.standin.client()
        cls.watcher_id = "e2e-" + os.path.basename(cls.tmp)
        server_extra = cls.SERVER_EXTRA
        if server_extra is None and cls.STANDIN_MODE == "lms":
            server_extra = {"api": "lms"}
        write_config_root(cls.tmp, cls.standin.port, cls.QUEUES, shutdown_grace=cls.SHUTDOWN_GRACE,
                          manager_extra=cls.MANAGER_EXTRA, login_poll_interval=cls.LOGIN_POLL_INTERVAL,
                          server_extra=server_extra, poll_interval=cls.POLL_INTERVAL)
        for name, text in cls.CONF_D_FILES.items():
            with open(os.path.join(cls.tmp, "conf.d", name), "w") as out:
                out.write(text)
        cls.before_watcher()
        cls.watcher = WatcherProcess(cls.tmp, cls.watcher_id, cls.WATCHER_ARGS, cls.WATCHER_ENV)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.watcher.stop()
        finally:
            cls.standin.stop()

    def submit(self, queue, grader, response):
        return self.xqueue.submit(queue, student_response=response, grader_payload={"grader": grader})

    def result_for(self, submission_id, timeout=90):
        def found():
            return [r for r in self.xqueue.results() if r["submission_id"] == submission_id]
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.watcher.process.poll() is not None:
                self.fail("the watcher exited (%s):\n%s" % (self.watcher.process.returncode, self.watcher.output()[-4000:]))
            results = found()
            if results:
                return results[0]
            time.sleep(0.05)
        self.fail("no result for submission %s within %ss; watcher log:\n%s"
                  % (submission_id, timeout, self.watcher.output()[-4000:]))


def read_example(relative):
    with open(os.path.join(DEMO_COURSE, relative), encoding="utf-8") as source:
        return source.read()
