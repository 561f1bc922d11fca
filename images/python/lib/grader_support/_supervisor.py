"""The image's entrypoint: grades one submission and prints one JSON result.

Runs as PID 1, uid 0, with only CAP_SETUID and CAP_SETGID. It alone reads the
private mounts (``/xqw/private`` is 0700 root) and alone writes the container's
stdout. Course code never runs in this process; it runs in three processes forked
from it (a fork server: one interpreter start per container) right after the
grading runtime is imported and before anything of the job or the course is read,
each under its own uid and with only its own pipes:

* staff process (staff uid): loads the grader; input checks, preprocessing,
  and later the comparisons (``_staff``);
* answer run (staff uid): the grader's tests on the preprocessed answer.py
  (``_runner``);
* student run (student uid, stdout/stderr on /dev/null): the grader's tests on
  the preprocessed submission (``_runner``); it sees a read-only copy of the
  problem directory without answer.py, and can send back only its per-test
  outputs, as data.

After the student run every student process is killed (``_processes.kill_all_of``).
When this process exits the container ends, and with it anything left.

Started with ``XQW_WAIT_FOR_JOB=<seconds>`` (image label
``org.openedx.xqueue-watcher.job-signal``), the container is started before its
submission exists: the three processes start at once and wait,
and the watcher delivers the job by writing the job directory (``job.json``
last, by rename) and then writing a byte into the job directory's FIFO
``job-ready`` (no engine call) or, where the FIFO cannot reach the container
(a runtime such as gVisor), sending SIGWINCH. Grading time counts from then.

Exit status 0 means stdout holds the result; 2 means the job or the container
set-up is unusable (reason on stderr); 3 means no job arrived in the waiting time.
"""

import gc
import json
import os
import select
import signal
import sys
import time

# _runner and _staff are imported here, before any fork, so the processes forked from this one start
# with the grading runtime already loaded.
from grader_support import _contract, _files, _outcome, _processes, _runner, _staff, _wire

_STAFF_REPLY_LIMIT = 1 << 31
_STUDENT_REPORT_BASE_LIMIT = 4 << 20
_STUDENT_REPORT_PER_TEST = 64 << 10
WAIT_FOR_JOB_ENV = "XQW_WAIT_FOR_JOB"
# Ignored by default: sent before the handler is set (the interpreter still starting), it must not kill us.
JOB_SIGNAL = signal.SIGWINCH
NO_JOB_ARRIVED = 3


class JobError(Exception):
    """The job directory does not hold a usable job."""


class StaffProblem(Exception):
    """The course material (grader, answer.py, problem directory) cannot be used."""


class Verdict(Exception):
    """Grading ended early with ``result`` (raised by a step, caught by ``Grading.run``)."""

    def __init__(self, result):
        Exception.__init__(self, "grading ended early")
        self.result = result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        grader_dir, job_dir = _parse_args(argv)
        waiting = _waiting_time(os.environ.get(WAIT_FOR_JOB_ENV))
        if os.geteuid() != 0:
            raise JobError("the supervisor must run as user 0:0 with CAP_SETUID and CAP_SETGID "
                           "(image label org.openedx.xqueue-watcher.supervisor=setuid)")
    except JobError as error:
        _processes.log("cannot grade: %s" % error)
        return 2
    os.umask(0o022)
    # As PID 1 nothing else would end us on `docker stop`; the container's end kills every child.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    crew = Crew()
    try:
        # Forked before anything of the job or the course is read, so no run can find it in its memory.
        crew.start()
        if waiting is not None:
            if not wait_for_job(job_dir, waiting):
                _processes.log("no job arrived within %gs; exiting unused" % waiting)
                return NO_JOB_ARRIVED
        return _grade(grader_dir, job_dir, crew)
    finally:
        crew.close()


def _grade(grader_dir, job_dir, crew):
    started = time.monotonic()
    try:
        job = load_job(job_dir)
        job.files = _read_files(job_dir, job.listed_files)
    except JobError as error:
        _processes.log("cannot grade: %s" % error)
        return 2
    # The watcher may mount a whole course (so it can create the container before the submission
    # arrives); grading only ever sees the problem's own directory, as with a per-problem mount.
    problem, job.grader = os.path.split(job.grader)
    grading = Grading(job, os.path.join(grader_dir, problem) if problem else grader_dir, started, crew)
    try:
        result = grading.run()
    finally:
        grading.finish()
    crew.close()
    emit(result)
    _processes.log("graded in %.3fs: correct=%s score=%.4g errors=%d tests=%d" % (
        time.monotonic() - started, result["correct"], result["score"], len(result["errors"]),
        len(result["tests"])))
    _report_usage()
    return 0


def _waiting_time(setting):
    """Seconds to wait for the job (XQW_WAIT_FOR_JOB), or None when the job is already there."""
    if setting is None or setting == "":
        return None
    try:
        seconds = float(setting)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise JobError("%s must be a positive number of seconds, got %r" % (WAIT_FOR_JOB_ENV, setting))
    return seconds


def wait_for_job(job_dir, seconds):
    """True once job.json is in `job_dir`; False after `seconds` without it. Sleeps until woken.

    The watcher renames job.json into place, then writes a byte into the job directory's FIFO
    (JOB_READY_FIFO) or, when nobody reads the FIFO (it cannot reach this container under some
    runtimes, or this process had not opened it yet), sends JOB_SIGNAL. The FIFO is opened and the
    handler set before the first look, so a wake-up sent before either finds the file already there.
    """
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    previous_fd = signal.set_wakeup_fd(wake_write)
    previous_handler = signal.signal(JOB_SIGNAL, lambda *_: None)
    fifo = _open_fifo(os.path.join(job_dir, _contract.JOB_READY_FIFO))
    job_file = os.path.join(job_dir, "job.json")
    end = time.monotonic() + seconds
    try:
        while not os.path.exists(job_file):
            left = end - time.monotonic()
            if left <= 0:
                return False
            watched = [wake_read] if fifo is None else [wake_read, fifo]
            ready = select.select(watched, [], [], left)[0]
            if wake_read in ready:
                while _drain(wake_read):
                    pass
            if fifo is not None and fifo in ready:
                # One wake-up per container: after it (or an end of file) only the signal is awaited.
                _drain(fifo)
                os.close(fifo)
                fifo = None
        return True
    finally:
        signal.signal(JOB_SIGNAL, previous_handler)
        signal.set_wakeup_fd(previous_fd)
        for fd in (wake_read, wake_write, fifo):
            if fd is not None:
                os.close(fd)


def _open_fifo(path):
    """The read end of the job directory's FIFO, or None where there is none or it cannot be opened
    (an older watcher makes none; gVisor refuses a host FIFO): the signal then wakes us."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def _drain(fd):
    try:
        return bool(os.read(fd, 64))
    except BlockingIOError:
        return False


def _report_usage():
    """One machine-readable stderr line (USAGE_PREFIX + JSON): CPU seconds of every process in the
    container and the largest resident set, which `xqueue-watcher grade` shows to staff tuning limits,
    and the forks the container's pids cgroup refused, from which the watcher names the process limit
    however the submission handled the failures."""
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "cpu_seconds": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3),
        "max_rss_bytes": max(own.ru_maxrss, children.ru_maxrss) * 1024,
    }
    refused = refused_forks()
    if refused is not None:
        usage["refused_forks"] = refused
    sys.stderr.write(USAGE_PREFIX + json.dumps(usage) + "\n")
    sys.stderr.flush()


# Where the container's pids cgroup counts the forks refused at its limit ("max N"): the cgroup v2
# layout, then v1's. A runtime with its own kernel may have neither.
PIDS_EVENTS = ("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events")


def refused_forks(paths=PIDS_EVENTS):
    """How many forks the pids cgroup refused so far, or None when no pids.events can be read."""
    for path in paths:
        try:
            with open(path) as events:
                for line in events:
                    name, _, count = line.strip().partition(" ")
                    if name == "max":
                        return int(count)
        except (OSError, ValueError):
            continue
    return None


USAGE_PREFIX = "xqw-usage: "


def _parse_args(argv):
    dirs = {"--grader-dir": _contract.GRADER_DIR, "--job-dir": _contract.JOB_DIR}
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag not in dirs or not args:
            raise JobError("usage: xqw-supervisor [--grader-dir DIR] [--job-dir DIR]")
        dirs[flag] = args.pop(0)
    return dirs["--grader-dir"], dirs["--job-dir"]


class Job:
    def __init__(self, grader, seed, payload, lang, hide_output, timeout, submission, listed_files=()):
        self.grader = grader
        self.seed = seed
        self.payload = payload
        self.lang = lang
        self.hide_output = hide_output
        self.timeout = timeout
        self.submission = submission
        self.listed_files = list(listed_files)  # [(name, "files/<safe name>", size)] from job.json
        self.files = []  # [(name, bytes)] once read; None when over FILES_LIMIT_BYTES


def _read_files(job_dir, listed):
    try:
        return _files.read_files(job_dir, listed)
    except OSError as error:
        raise JobError("reading the uploaded files in %s: %s" % (job_dir, error))


def load_job(job_dir):
    try:
        with open(os.path.join(job_dir, "job.json"), "rb") as handle:
            spec = json.loads(handle.read().decode("utf-8"))
        with open(os.path.join(job_dir, "submission"), "rb") as handle:
            submission = handle.read(_contract.SUBMISSION_LIMIT + 1)
    except (OSError, ValueError) as error:
        raise JobError("reading the job in %s: %s" % (job_dir, error))
    if not isinstance(spec, dict):
        raise JobError("job.json is not a JSON object")
    grader = spec.get("grader")
    if not isinstance(grader, str) or not grader or os.path.isabs(grader) or ".." in grader.split("/"):
        raise JobError("job.json grader must be a relative file name inside the grader directory, "
                       "got %r" % (grader,))
    payload = spec.get("grader_payload")
    payload_settings = payload if isinstance(payload, dict) else {}
    seed = spec.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, float)):
        raise JobError("job.json seed must be an integer, got %r" % (seed,))
    timeout = spec.get("timeout_seconds")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise JobError("job.json timeout_seconds must be a positive number, got %r" % (timeout,))
    lang = spec.get("lang") or payload_settings.get("lang") or "en"
    hide_output = bool(spec.get("hide_output") or payload_settings.get("hide_output"))
    try:
        listed_files = _files.listed_files(spec)
    except _files.FilesError as error:
        raise JobError(str(error))
    return Job(grader, int(seed), payload, lang if isinstance(lang, str) else "en", hide_output,
               timeout, submission, listed_files)


def emit(result):
    data = memoryview((json.dumps(_outcome.sanitized(result), ensure_ascii=True) + "\n").encode("ascii"))
    while data:
        data = data[os.write(1, data):]


class Grading:
    """One submission's grading, from the job to the result."""

    def __init__(self, job, grader_dir, started, crew):
        self.job = job
        self.crew = crew
        self.grader_dir = grader_dir
        self.started = started
        self.deadline = None
        if job.timeout is not None:
            # Finish before the watcher's own deadline, which also counts container start and exit.
            reserve = min(job.timeout / 2, 1.0 + 0.05 * job.timeout)
            self.deadline = started + job.timeout - reserve
        self.children = crew.children
        self.view_dir = None
        self.view_grader_file = None
        self.file_paths = {}  # {original name: read-only copy} for every child
        self._translation = None
        self._students_killed = False

    # --- the steps ---------------------------------------------------------
    def run(self):
        try:
            return self._steps()
        except StaffProblem as problem:
            return self._staff_problem(str(problem))
        except Verdict as verdict:
            return verdict.result

    def _steps(self):
        if isinstance(self.job.payload, dict) and self.job.payload.get("skip_grader"):
            return _outcome.result(correct=True, score=1.0)
        submission = self._decoded_submission()
        answer = self._read_answer()
        self._make_view()
        self._copy_files()
        staff, answer_run, student_run = self.crew.start()
        processed = self._check_and_preprocess(staff, submission, answer)
        expected = self._run_answer(answer_run, processed["answer"])
        actual = self._run_submission(student_run, processed["submission"], len(expected["results"]))
        return self._compare(staff, expected, actual)

    def _decoded_submission(self):
        if self.job.files is None:
            raise Verdict(_outcome.result(errors=[self._translate(_outcome.FILES_TOO_LARGE).format(
                _contract.FILES_LIMIT_BYTES)]))
        raw = self.job.submission
        if not raw.strip():
            # A file-upload problem: the LMS sends an empty response and the files; one .py file is the code.
            raw = _files.lone_python_file(self.job.files) or raw
        if len(raw) > _contract.SUBMISSION_LIMIT:
            raise Verdict(_outcome.result(errors=[self._translate(_outcome.SUBMISSION_TOO_LARGE).format(
                _contract.SUBMISSION_LIMIT)]))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Verdict(_outcome.result(errors=[self._translate(_outcome.NOT_UTF8).format(
                "0x%02x" % raw[error.start], error.start)]))

    def _read_answer(self):
        answer_path = os.path.join(os.path.dirname(os.path.join(self.grader_dir, self.job.grader)),
                                   _contract.ANSWER_FILE)
        if os.path.basename(self.job.grader) == _contract.ANSWER_FILE:
            raise StaffProblem("the grader file is named answer.py")
        try:
            with open(answer_path, "rb") as handle:
                return handle.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise StaffProblem("reading %s: %s" % (answer_path, error))

    def _make_view(self):
        from grader_support import _view

        grader_path = os.path.join(self.grader_dir, self.job.grader)
        if not os.path.isfile(grader_path):
            raise StaffProblem("the grader file %s does not exist" % grader_path)
        try:
            view = _view.make_view(self.grader_dir, self.job.grader)
        except (OSError, _view.ViewError) as error:
            raise StaffProblem("copying the problem directory: %s" % error)
        self.view_dir = view
        self.view_grader_file = os.path.join(view, self.job.grader)

    def _copy_files(self):
        if not self.job.files:
            return
        try:
            self.file_paths = _files.copy_for_runs(self.job.files)
        except OSError as error:
            raise StaffProblem("copying the uploaded files to /tmp: %s" % error)

    def _check_and_preprocess(self, staff, submission, answer):
        request = {"grader_file": self.view_grader_file, "lang": self.job.lang, "seed": self.job.seed,
                   "submission": submission, "answer": answer, "files": self.file_paths}
        try:
            _wire.write_frame(staff.request, request, self.deadline)
            reply = _wire.read_frame(staff.reply, _STAFF_REPLY_LIMIT, self.deadline,
                                     lambda: self.children.alive(staff.pid))
        except (OSError, _wire.WireError) as error:
            raise StaffProblem("the staff process gave no reply: %s" % error)
        if reply.get("status") == "grader_error":
            raise StaffProblem(reply.get("detail"))
        if reply.get("status") == "check_error":
            _processes.log("the grader failed on this submission: %s" % reply.get("detail"))
            raise Verdict(_outcome.error_result(self._translate, _outcome.NO_TESTS_RAN))
        if reply.get("input_errors"):
            raise Verdict(_outcome.result(errors=[str(error) for error in reply["input_errors"]]))
        return reply

    def _run_answer(self, answer_run, answer):
        request = self._run_request(_contract.ANSWER_MODULE, answer, output_limit=None)
        try:
            _wire.write_frame(answer_run.request, request, self.deadline)
            report = _outcome.validated_report(_wire.read_frame(
                answer_run.reply, _STAFF_REPLY_LIMIT, self.deadline,
                lambda: self.children.alive(answer_run.pid)))
        except (OSError, ValueError, _wire.WireError) as error:
            raise StaffProblem("the answer run gave no usable report: %s" % error)
        problem = _outcome.staff_run_problem(report)
        if problem:
            raise StaffProblem(problem)
        for index, row in enumerate(report["results"]):
            if len(row[2]) > _contract.OUTPUT_LIMIT:
                _processes.log("warning: test %d prints %d characters for answer.py; students' output "
                               "is cut at %d, so it can never match" % (
                                   index + 1, len(row[2]), _contract.OUTPUT_LIMIT))
        return report

    def _run_submission(self, student_run, submission, test_count):
        request = self._run_request(_contract.SUBMISSION_MODULE, submission,
                                    output_limit=_contract.OUTPUT_LIMIT)
        limit = _STUDENT_REPORT_BASE_LIMIT + _STUDENT_REPORT_PER_TEST * test_count
        failure = None
        try:
            _wire.write_frame(student_run.request, request, self.deadline)
            report = _wire.read_frame(student_run.reply, limit, self.deadline,
                                      lambda: self.children.alive(student_run.pid))
        except OSError as error:
            failure = ("write", str(error))
        except _wire.WireError as error:
            failure = (error.reason, str(error))
        self._kill_student_processes()
        if failure:
            raise Verdict(self._student_failure(student_run, *failure))
        try:
            return _outcome.validated_report(report)
        except ValueError as error:
            _processes.log("the student run sent a malformed report: %s" % error)
            raise Verdict(_outcome.error_result(self._translate, _outcome.INTERFERED))

    def _compare(self, staff, expected, actual):
        errors, usable = _outcome.student_run_errors(actual, self._translate)
        if not usable:
            detail = (actual["grader"]["exception"] or "")[:4000]
            _processes.log("the grader failed in the student run:\n%s" % detail)
            return _outcome.result(errors=errors)
        if errors:
            return _outcome.result(errors=errors)
        mismatch, rows = _outcome.comparison_rows(expected, actual, self._translate)
        if mismatch:
            return _outcome.result(errors=[mismatch])
        try:
            _wire.write_frame(staff.request, {"pairs": [[row[2], row[3]] for row in rows]}, self.deadline)
            reply = _wire.read_frame(staff.reply, _STAFF_REPLY_LIMIT, self.deadline,
                                     lambda: self.children.alive(staff.pid))
            comparisons = [(bool(correct), message if isinstance(message, str) else None)
                           for correct, message in reply["results"]]
        except (OSError, KeyError, TypeError, ValueError, _wire.WireError) as error:
            _processes.log("the staff process did not compare the outputs: %s" % error)
            return _outcome.error_result(self._translate, _outcome.NO_TESTS_RAN)
        if len(comparisons) != len(rows):
            _processes.log("warning: the staff process has %d tests, the runs had %d; only the first %d "
                           "count" % (len(comparisons), len(rows), min(len(rows), len(comparisons))))
        return _outcome.graded_result(rows, comparisons, self.job.hide_output, self._translate)

    # --- helpers --------------------------------------------------------------
    def _run_request(self, module_name, source, output_limit):
        return {"grader_file": self.view_grader_file, "view_dir": self.view_dir, "lang": self.job.lang,
                "seed": self.job.seed, "module_name": module_name, "source": source,
                "output_limit": output_limit, "files": self.file_paths}

    def _kill_student_processes(self):
        self._students_killed = True
        for _ in range(5):
            if not _processes.kill_all_of(_contract.STUDENT_UID, _contract.REAPER_UID):
                _processes.log("warning: could not switch uids to kill the student processes")
            self.children.reap()
            left = _processes.processes_of(_contract.STUDENT_UID)
            if not left:
                return
            _processes.wait_for_exit(left, 0.01)
        _processes.log("warning: student processes survive: %s" % left)

    def _student_failure(self, student_run, reason, detail):
        _processes.log("the student run ended without a report: %s" % detail)
        if reason == "timeout":
            return _outcome.result(errors=[self._translate(_outcome.TIMED_OUT).format(
                "{:g}".format(self.job.timeout))])
        if reason == "too_large":
            return _outcome.error_result(self._translate, _outcome.TOO_MUCH_OUTPUT)
        if reason == "malformed":
            return _outcome.error_result(self._translate, _outcome.INTERFERED)
        status = self.children.wait(student_run.pid, timeout=1.0)
        if status is not None and os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if number == 9:
                return _outcome.error_result(self._translate, _outcome.KILLED)
            return _outcome.result(errors=[self._translate(_outcome.CRASHED).format(number)])
        code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else "unknown"
        return _outcome.result(errors=[self._translate(_outcome.EXITED_EARLY).format(code)])

    def _staff_problem(self, detail):
        _processes.log("staff problem: %s" % (detail or "")[:8000])
        return _outcome.error_result(self._translate, _outcome.STAFF_PROBLEM)

    def _translate(self, message):
        """The course's translation of a student-facing message (loaded on first use)."""
        if self._translation is None:
            self._translation = _load_translation(self.view_grader_file, self.grader_dir, self.job)
        return self._translation(message)

    def finish(self):
        """Every student process is gone once grading is over, whatever ended it."""
        if self.crew.started and not self._students_killed:
            self._kill_student_processes()


# Set for every run's process (numerical libraries single-threaded, no display for plots).
_CHILD_ENVIRONMENT = {"TMPDIR": "/tmp", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "MPLBACKEND": "Agg"}


class Crew:
    """The three processes of one grading, forked from the supervisor before it reads the job (and
    before the job arrives when the container waits for it). Each waits for its request."""

    def __init__(self):
        self.children = _processes.Children()
        self._members = None
        self._pipes = []

    @property
    def started(self):
        return self._members is not None

    def start(self):
        """(staff, answer run, student run), starting them on first use."""
        if self._members is None:
            # The children's environment (they inherit it), set here once: each child only adds its HOME.
            os.environ.pop(WAIT_FOR_JOB_ENV, None)
            os.environ.update(_CHILD_ENVIRONMENT)
            # Objects alive now are never collected in the children, so their pages stay shared.
            gc.freeze()
            self._members = (self._start(_staff.main, _contract.STAFF_UID, "staff"),
                             self._start(_runner.main, _contract.STAFF_UID, "staff"),
                             self._start(_runner.main, _contract.STUDENT_UID, "student"))
        return self._members

    def _start(self, entry, uid, role):
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        null = os.open(os.devnull, os.O_RDWR)
        if role == "student":
            fds = {0: null, 1: null, 2: null, 3: request_read, 4: reply_write}
            oom, niceness = 1000, 19
        else:
            fds = {0: null, 1: 2, 2: 2, 3: request_read, 4: reply_write}
            oom, niceness = 500, 0
        pid = _processes.fork_as(entry, uid, uid, fds, oom_score_adj=oom,
                                 home_prefix="/tmp/xqw-%s-" % role, niceness=niceness)
        self.children.track(pid)
        for fd in (request_read, reply_write, null):
            os.close(fd)
        self._pipes += [request_write, reply_read]
        return _Child(pid, request_write, reply_read)

    def close(self):
        for fd in self._pipes:
            try:
                os.close(fd)
            except OSError:
                pass
        self._pipes = []


class _Child:
    def __init__(self, pid, request, reply):
        self.pid = pid
        self.request = request
        self.reply = reply


def _load_translation(view_grader_file, grader_dir, job):
    import gettext

    base = os.path.dirname(view_grader_file or os.path.join(grader_dir, job.grader))
    try:
        translation = gettext.translation("graders", localedir=os.path.join(base, "conf", "locale"),
                                          languages=_contract.catalog_languages(job.lang),
                                          fallback=True)
    except OSError:
        return lambda message: message
    return translation.gettext


if __name__ == "__main__":
    sys.exit(main())
