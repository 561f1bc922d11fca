"""Child processes of the supervisor: starting them under other uids, reaping, killing.

The supervisor runs as uid 0 holding only CAP_SETUID and CAP_SETGID. It cannot
signal processes of other uids as root (no CAP_KILL), so to kill every student
process it becomes, for one ``kill(-1, SIGKILL)``, real uid REAPER_UID and
effective uid STUDENT_UID, keeping saved uid 0 to come back (``kill_all_of``).
A signal goes where the sender's real or effective uid is the target's real or
saved uid: so the kill reaches every student process and nothing else, and no
student process can signal the supervisor meanwhile (their uids match none of
its real/saved uids).
"""

import builtins
import fcntl
import os
import select
import signal
import sys
import time

_MAX_FD = 65536


class Children:
    """Tracks our children and reaps every process that ends up ours (PID 1 inherits orphans)."""

    def __init__(self):
        self._exit_status = {}
        self._tracked = set()

    def track(self, pid):
        self._tracked.add(pid)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._tracked:
                self._exit_status[pid] = status

    def alive(self, pid):
        self.reap()
        return pid not in self._exit_status

    def wait(self, pid, timeout):
        """The wait status of ``pid`` once it ended, or None if still running after ``timeout`` s."""
        end = time.monotonic() + timeout
        while self.alive(pid):
            if time.monotonic() >= end:
                return None
            time.sleep(0.005)
        return self._exit_status[pid]


def fork_as(entry, uid, gid, fds, oom_score_adj=None, home_prefix=None, niceness=0):
    """Fork a child that runs ``entry()`` as ``uid``/``gid`` (no supplementary groups), then exits.

    The fork server: the child starts from the caller's state, so the caller must hold nothing the child
    may not see (the supervisor forks before it reads any job or course file). The child then looks like
    a fresh ``python3 -I -c`` interpreter to the code it runs: default signal handlers, the caller's
    environment (plus HOME), an empty ``__main__``, ``sys.argv == ["-c"]``; it never returns into the
    caller's code.

    ``niceness`` lowers the child's CPU priority (inherited by everything it starts), so a
    submission that keeps the CPU busy with many processes cannot starve the supervisor of the
    container's CPU quota.

    ``fds`` maps each child fd (0, 1, 2, 3, ...) to a parent fd; every other fd
    is closed. With ``home_prefix``, the child makes itself a fresh 0700 home
    directory ``<prefix><random>`` after dropping privileges (the supervisor
    cannot chown), works in it and gets it as HOME.
    """
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        _drop_to(uid, gid, fds, oom_score_adj, niceness)
        _look_fresh(home_prefix)
    except BaseException as error:
        os.write(2, ("xqw-supervisor: cannot start a process as uid %d: %r\n" % (uid, error)).encode())
        os._exit(127)
    try:
        entry()
    except SystemExit as exit:
        status = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        status = 1
        try:
            import traceback

            traceback.print_exc()
        except BaseException:
            pass
    finally:
        os._exit(status)  # the child must never return into the supervisor


def _drop_to(uid, gid, fds, oom_score_adj, niceness):
    if oom_score_adj is not None:
        adj = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(adj, str(oom_score_adj).encode())
        finally:
            os.close(adj)
    if niceness:
        os.nice(niceness)
    _arrange_fds(fds)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    os.umask(0o077)


def _look_fresh(home_prefix):
    """What a new interpreter would have: its own home, signal handlers and ``__main__``."""
    for number in (signal.SIGTERM, signal.SIGWINCH, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    if home_prefix:
        os.environ["HOME"] = _make_home(home_prefix)
        os.chdir(os.environ["HOME"])
    main = type(sys)("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.argv = ["-c"]


def _arrange_fds(fds):
    # Copy the sources above every target first, so no dup2 clobbers a later source.
    above = max(fds) + 1
    moved = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, above) for target, source in fds.items()}
    for target, fd in moved.items():
        os.dup2(fd, target, inheritable=True)
    os.closerange(above, _MAX_FD)


def _make_home(prefix):
    while True:
        path = prefix + os.urandom(6).hex()
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def kill_all_of(uid, helper_uid):
    """SIGKILL every process whose real or saved uid is `uid` (see above); False if the kill could not be
    made (the caller looks again with processes_of)."""
    try:
        os.setresuid(helper_uid, uid, 0)
    except OSError:
        return False
    try:
        for _ in range(3):  # a process forking meanwhile may add one
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                break
        return True
    finally:
        os.setresuid(0, 0, 0)  # the saved uid 0 allows it without CAP_SETUID


def processes_of(uid):
    """PIDs of live (non-zombie) processes whose real uid is ``uid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        uids = fields.get("Uid", "").split()
        if uids and int(uids[0]) == uid and not fields.get("State", "").strip().startswith(("Z", "X")):
            found.append(int(name))
    return found


def wait_for_exit(pids, timeout):
    """Return once every process in ``pids`` has exited, or after ``timeout`` s.

    A killed process is usually still on its way out when the kill returns: waiting on its pidfd
    ends the moment it is gone instead of a fixed sleep. Where pidfds are refused (gVisor may), or
    for a pid already gone, the rest of the timeout is slept.
    """
    end = time.monotonic() + timeout
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue  # already gone
            except (AttributeError, OSError):
                time.sleep(timeout)
                return
        while fds:
            left = end - time.monotonic()
            if left <= 0:
                return
            for fd in select.select(fds, [], [], left)[0]:
                fds.remove(fd)
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def log(message):
    sys.stderr.write("xqw-supervisor: %s\n" % message)
    sys.stderr.flush()
