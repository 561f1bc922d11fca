"""Files uploaded with the submission (XQueue's ``xqueue_files``), as graders see them.

The watcher writes each file into the job directory under ``files/`` and lists it
in job.json (``"files": [{"name", "path", "size"}]``). Only the supervisor can
enter the job directory, so it copies the files to a fresh
``/tmp/xqw-files-<random>/`` (root-owned, read-only to others) and sends every
child process the map {original name: copy}; ``grader_support.submitted_files()``
reads it. The files are the student's own: the staff process, the answer run and
the student run all see the same ones, and nothing of the staff's is among them.
"""

import os
import stat

from grader_support import _contract
from grader_support._view import fresh_dir

_installed = {}  # original name -> path of the read-only copy, in job.json's order


class FilesError(Exception):
    """job.json's file listing cannot be used."""


def install(paths):
    """Called by the runtime before any course code runs: ``paths`` is {name: path} or None."""
    global _installed
    _installed = dict(paths or {})


def submitted_files():
    """The files uploaded with the submission: {original file name: bytes}, in upload order.

    Empty when none were uploaded (a plain text response). The names are what the
    student's computer called the files: use them to find a file, never as paths.
    """
    files = {}
    for name, path in _installed.items():
        with open(path, "rb") as handle:
            files[name] = handle.read()
    return files


def listed_files(spec):
    """job.json's ``files`` checked: [(name, relative path, size)]. Raises FilesError."""
    entries = spec.get("files", [])
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FilesError("job.json files must be a list, got %r" % (type(entries).__name__,))
    listed, names = [], set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise FilesError("job.json files holds %r, not an object" % (entry,))
        name, path, size = entry.get("name"), entry.get("path"), entry.get("size")
        parts = path.split("/") if isinstance(path, str) else []
        if (len(parts) != 2 or parts[0] != "files" or parts[1] in ("", ".", "..")
                or parts[1].startswith(".") or "\0" in path):
            raise FilesError("job.json file path must be files/<name>, got %r" % (path,))
        if not isinstance(name, str) or name in names:
            raise FilesError("job.json file name must be a unique string, got %r" % (name,))
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise FilesError("job.json file size must be a whole number, got %r" % (size,))
        names.add(name)
        listed.append((name, path, size))
    if len(listed) > _contract.FILES_LIMIT_COUNT:
        raise FilesError("job.json lists %d files (at most %d)" % (len(listed), _contract.FILES_LIMIT_COUNT))
    return listed


def read_files(job_dir, listed):
    """[(name, bytes)] read from the job directory; None when they pass FILES_LIMIT_BYTES together.
    Raises OSError for a file that is missing, not a regular file or not the listed size."""
    files, total = [], 0
    for name, path, size in listed:
        descriptor = os.open(os.path.join(job_dir, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError("%s is not a regular file" % path)
            data = handle.read(_contract.FILES_LIMIT_BYTES - total + 1)
        total += len(data)
        if total > _contract.FILES_LIMIT_BYTES:
            return None
        if len(data) != size:
            raise OSError("%s holds %d bytes, job.json says %d" % (path, len(data), size))
        files.append((name, data))
    return files


def copy_for_runs(files):
    """Copy [(name, bytes)] into a fresh /tmp/xqw-files-<random>/ (0755, files 0644, root-owned);
    returns {name: path}, in the same order."""
    directory = fresh_dir("/tmp/xqw-files-")
    paths = {}
    for index, (name, data) in enumerate(files):
        path = os.path.join(directory, "%d" % index)  # the untrusted name never becomes a path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(descriptor, "wb") as writer:
            writer.write(data)
        os.chmod(path, 0o644)
        paths[name] = path
    return paths


def lone_python_file(files):
    """The bytes of the only uploaded file when it is a .py file, else None (a file-upload problem
    whose grader expects code gets it as the submission)."""
    if len(files) == 1 and files[0][0].lower().endswith(".py"):
        return files[0][1]
    return None

