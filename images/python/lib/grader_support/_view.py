"""The read-only copy of the problem directory that the runs and the staff process use.

The problem directory is mounted under /xqw/private, which only uid 0 can enter.
The supervisor copies it to ``/tmp/xqw-view-<random>/`` (root-owned, directories
0755, files 0644: readable, never writable, by the other uids), leaving out the
staff answer (``answer.py`` next to the grader file, and any file that resolves
to it), ``__pycache__`` and ``.git``. Everything else (the grader, helper modules
and packages, data files, ``conf/locale``) is in the copy, because the grader's
tests run in the student's process and need what the grader needs.
"""

import os
import stat

from grader_support import _contract

_SKIPPED_DIRS = {"__pycache__", ".git"}


class ViewError(Exception):
    """The problem directory cannot be copied (too large)."""


def make_view(grader_dir, grader_rel):
    """Copy ``grader_dir`` into a fresh directory under /tmp and return its path."""
    answer = os.path.join(os.path.dirname(os.path.join(grader_dir, grader_rel)), _contract.ANSWER_FILE)
    answer_real = os.path.realpath(answer)
    view = fresh_dir("/tmp/xqw-view-")
    budget = _Budget()
    for parent, dirs, files in os.walk(grader_dir, followlinks=False):
        dirs[:] = sorted(name for name in dirs if name not in _SKIPPED_DIRS)
        relative = os.path.relpath(parent, grader_dir)
        target_dir = view if relative == "." else os.path.join(view, relative)
        if relative != ".":
            os.mkdir(target_dir, 0o755)
        for name in sorted(files):
            source = os.path.join(parent, name)
            if source == answer or os.path.realpath(source) == answer_real:
                continue
            _copy_file(source, os.path.join(target_dir, name), budget)
    return view


def fresh_dir(prefix):
    """A new directory under `prefix` with a random suffix, mode 0755 whatever the umask."""
    while True:
        path = prefix + os.urandom(6).hex()
        try:
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)
            return path
        except FileExistsError:
            continue


class _Budget:
    def __init__(self):
        self.files = 0
        self.bytes = 0

    def spend(self, size, name):
        self.files += 1
        self.bytes += size
        if self.files > _contract.VIEW_LIMIT_FILES or self.bytes > _contract.VIEW_LIMIT_BYTES:
            raise ViewError("the problem directory holds more than %d files or %d bytes (at %s)" % (
                _contract.VIEW_LIMIT_FILES, _contract.VIEW_LIMIT_BYTES, name))


def _copy_file(source, target, budget):
    """Copy a regular file (following a symlink); skip anything else or unreadable."""
    try:
        info = os.stat(source)
    except OSError:
        return  # a dangling symlink
    if not stat.S_ISREG(info.st_mode):
        return
    budget.spend(info.st_size, source)
    try:
        with open(source, "rb") as reader:
            data = reader.read(_contract.VIEW_LIMIT_BYTES + 1)
    except OSError as error:
        import sys

        sys.stderr.write("xqw-supervisor: warning: %s is not readable, left out: %s\n" % (source, error))
        return
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(descriptor, "wb") as writer:
        writer.write(data)
