"""Helpers for the in-image tests: problem directories, jobs and supervisor runs."""

import builtins
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

SUPERVISOR = "/opt/xqw/bin/xqw-supervisor"


def write_tree(root, files):
    """Write ``{relative path: text or bytes}`` under ``root`` (dirs 0755, files 0644)."""
    for relative, content in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        data = content if isinstance(content, bytes) else textwrap.dedent(content).encode("utf-8")
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o644)
    for parent, dirs, _ in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(parent, name), 0o755)
    os.chmod(root, 0o755)


class Workspace:
    """A problem directory and a job directory under /tmp, removed afterwards."""

    def __init__(self, files):
        self.root = tempfile.mkdtemp(prefix="xqw-test-")
        self.problem = os.path.join(self.root, "problem")
        self.job = os.path.join(self.root, "job")
        os.mkdir(self.problem)
        os.mkdir(self.job)
        write_tree(self.problem, files)
        os.chmod(self.root, 0o755)

    def grade(self, submission, **job):
        """Run the supervisor on ``submission``; returns a SupervisorRun."""
        self.write_job(submission, **job)
        return run_supervisor(self.problem, self.job)

    def write_job(self, submission, **job):
        """The job directory as the watcher writes it: the submission, then job.json by rename."""
        spec = {"grader": "grader.py", "seed": 7, "grader_payload": {"grader": "x/grader.py"},
                "student_info": {}, "lang": "en", "hide_output": False, "timeout_seconds": 20}
        spec.update(job)
        write_tree(self.job, {"submission": submission if isinstance(submission, bytes)
                              else submission.encode("utf-8"), "job.json.tmp": json.dumps(spec)})
        os.rename(os.path.join(self.job, "job.json.tmp"), os.path.join(self.job, "job.json"))

    def make_fifo(self):
        """The job directory's FIFO, as the watcher makes it for a container started before its job."""
        os.mkfifo(os.path.join(self.job, "job-ready"), 0o600)

    def wake(self):
        """The watcher's wake-up: one byte into the FIFO; False when nobody holds it open to read."""
        try:
            fd = os.open(os.path.join(self.job, "job-ready"), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ENXIO:
                return False
            raise
        try:
            os.write(fd, b"\n")
        finally:
            os.close(fd)
        return True

    def start_waiting(self, seconds):
        """The supervisor started before its job (XQW_WAIT_FOR_JOB); returns the running Popen."""
        env = dict(os.environ, XQW_WAIT_FOR_JOB=str(seconds))
        return subprocess.Popen([sys.executable, "-I", "-B", SUPERVISOR, "--grader-dir", self.problem,
                                 "--job-dir", self.job], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


class SupervisorRun:
    def __init__(self, completed, seconds=None):
        self.seconds = seconds  # the supervisor process's life, start to exit (as a container's run)
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr.decode("utf-8", "replace")
        try:
            self.result = json.loads(completed.stdout.decode("utf-8"))
        except ValueError:
            self.result = None

    @property
    def outputs(self):
        return [test[4] for test in self.result["tests"]]

    def describe(self):
        return "exit %s\nstdout: %r\nstderr: %s" % (self.returncode, self.stdout[:3000], self.stderr[-3000:])


def run_supervisor(problem, job, timeout=60, env=None):
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-I", "-B", SUPERVISOR, "--grader-dir", problem, "--job-dir", job],
        capture_output=True, timeout=timeout, env=env)
    return SupervisorRun(completed, time.monotonic() - started)


def finished(process, timeout=60):
    """A SupervisorRun for a Popen started by Workspace.start_waiting, once it exits."""
    stdout, stderr = process.communicate(timeout=timeout)
    return SupervisorRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))


@contextlib.contextmanager
def translator(function):
    """Install ``function`` as builtins._ for the block."""
    had = "_" in builtins.__dict__
    saved = builtins.__dict__.get("_")
    builtins._ = function
    try:
        yield
    finally:
        if had:
            builtins._ = saved
        else:
            del builtins._


@contextlib.contextmanager
def captured():
    import io

    saved = sys.stdout
    sys.stdout = buffer = io.StringIO()
    try:
        yield buffer
    finally:
        sys.stdout = saved


def mo_file(messages):
    """A GNU .mo catalog holding ``messages`` ({msgid: msgstr}) with a UTF-8 header."""
    import struct

    catalog = dict(messages)
    catalog[""] = "Content-Type: text/plain; charset=UTF-8\n"
    keys = sorted(catalog)
    encoded = [(key.encode(), catalog[key].encode()) for key in keys]
    ids_at = 28
    strs_at = ids_at + 8 * len(keys)
    data_at = strs_at + 8 * len(keys)
    table, data = [], b""
    for key, _ in encoded:
        table.append((len(key), data_at + len(data)))
        data += key + b"\0"
    for _, value in encoded:
        table.append((len(value), data_at + len(data)))
        data += value + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), ids_at, strs_at, 0, data_at)
    return out + b"".join(struct.pack("<2I", *entry) for entry in table) + data
