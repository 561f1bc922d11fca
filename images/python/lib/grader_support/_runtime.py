"""What the staff process and the test runner set up before any course code runs.

Shared by ``_staff`` (loads the grader, preprocesses, compares) and ``_runner``
(runs the grader's tests on the answer or the submission): the import path, the
gettext ``_``, the random seeds, loading the grader file, bounded output capture
and the short tracebacks students see.
"""

import gettext
import importlib.util
import io
import linecache
import locale  # noqa: F401 (gettext imports it on first use: about 3.5 ms in every run otherwise)
import os
import random
import sys

# Imported here, not where used: the supervisor imports this module before it forks the runs, so no
# run pays for these imports again.
from grader_support import _contract, _files, gradelib

_LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare_interpreter(grader_file, lang, seed, files=None):
    """Import path, ``_``, random seeds and the uploaded files (``files``: {name: path} for
    ``grader_support.submitted_files()``), identical in every process that loads the grader.

    The runtime library comes first on the path so a stale copy of gradelib
    vendored next to a grader cannot shadow it (its EndTest would not be ours).
    """
    grader_dir = os.path.dirname(grader_file)
    sys.path[:0] = [_LIB_DIR, grader_dir]
    install_translation(grader_dir, lang)
    seed_random(seed)
    _files.install(files)


def install_translation(grader_dir, lang):
    """Install ``_`` from ``<grader dir>/conf/locale/<lang>/LC_MESSAGES/graders.mo``."""
    translation = gettext.translation(
        "graders", localedir=os.path.join(grader_dir, "conf", "locale"),
        languages=_contract.catalog_languages(lang), fallback=True)
    translation.install(names=None)


def seed_random(seed):
    """Seed gradelib's private generator and the global one (as upstream: seed, seed + 1)."""
    gradelib.rand = random.Random(seed)
    random.seed(seed + 1)


def load_grader(grader_file):
    """Load the grader file as a module named after it and return that module."""
    name = os.path.splitext(os.path.basename(grader_file))[0]
    spec = importlib.util.spec_from_file_location(name, grader_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def source_module(name, filename, source):
    """A module named ``name`` executed from ``source``, reporting ``filename`` in tracebacks."""
    module = type(sys)(name)
    module.__file__ = filename
    sys.modules[name] = module
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module


class BoundedOutput(io.TextIOBase):
    """A text sink like StringIO that keeps at most ``limit`` characters (all if None)."""

    def __init__(self, limit=None):
        super().__init__()
        self._parts = []
        self._kept = 0
        self._limit = limit

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if self._limit is None:
            self._parts.append(text)
        elif self._kept < self._limit:
            piece = text[:self._limit - self._kept]
            self._parts.append(piece)
            self._kept += len(piece)
        return len(text)

    def getvalue(self):
        return "".join(self._parts)


class captured_stdout:
    """``with captured_stdout(limit) as out:`` redirects sys.stdout into a BoundedOutput."""

    def __init__(self, limit=None):
        self.output = BoundedOutput(limit)

    def __enter__(self):
        self._saved = sys.stdout
        sys.stdout = self.output
        return self.output

    def __exit__(self, *exc):
        sys.stdout = self._saved
        return False


def student_traceback(error, student_files, hidden_prefixes=()):
    """A traceback for the student: from the first frame of their code on.

    Frames before it (the runtime, gradelib, the grader's test function) are
    dropped; if no frame is the student's, only the exception line remains.
    ``hidden_prefixes`` (directories holding grader files) are cut from the text
    so no grader path is shown. Chained exceptions are left out: their
    tracebacks are the runtime's, not the student's.
    """
    frames = error.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename not in student_files:
        frames = frames.tb_next
    import traceback  # only when something failed: it costs every interpreter ~5 ms to import

    text = "".join(traceback.format_exception(type(error), error, frames, chain=False))
    for prefix in hidden_prefixes:
        if prefix:
            text = text.replace(prefix.rstrip("/") + "/", "")
    return text


def full_traceback():
    import traceback

    return traceback.format_exc()

