"""The course-facing grading API: graders, tests, preprocessors and input checks.

Course staff write a ``grader.py`` that builds a module-level ``grader = Grader()``;
the image runs the staff ``answer.py`` and the student's submission through the
grader's tests in separate processes and compares what each test printed.

This is a re-implementation of the documented ``grader_support.gradelib`` API of
Open edX's Python xqueue-watcher: names, argument order, default behaviour and
the student-facing message texts (which are gettext message ids) are kept so that
existing graders and their translations work unchanged.
"""

import builtins
import contextlib
import io
import random
import sys

from grader_support import submitted_files  # noqa: F401  (also gradelib.submitted_files())

# A private random generator for graders. The runtime replaces it with
# ``random.Random(seed)`` before the grader module is loaded, identically for the
# staff run and the student run.
rand = random.Random(1)


def _(message):
    """Translate with the ``_`` the runtime installs from the course's conf/locale."""
    translate = builtins.__dict__.get("_")
    if callable(translate) and translate is not _:
        return translate(message)
    return message


class EndTest(Exception):
    """Raised to end a test early.

    From a test function it ends that test (see ``Grader.end_test``); from a
    ``compare_results`` function it fails the test and its message is appended to
    the student's output.
    """

    def __init__(self, message=None):
        Exception.__init__(self, message)


class Test:
    """A test function with its descriptions and its comparison.

    ``test_fn(submission_module)`` prints; what it prints for the staff answer is
    compared with what it prints for the submission by ``compare_results``.
    """

    def __init__(self, test_fn, short_description, detailed_description="", compare=None):
        self._test_fn = test_fn
        self.short_description = short_description
        self.detailed_description = detailed_description
        if compare:
            self.compare_results = compare

    def __call__(self, *args):
        return self._test_fn(*args)

    def compare_results(self, expected, actual):
        """True when the submission's output equals the staff answer's output."""
        return expected == actual


class Grader:
    """An exercise's tests, preprocessors and input checks."""

    def __init__(self):
        self._tests = []
        self._input_checks = []
        # Applied in order to both the staff answer and the submission.
        self._preprocessors = [fix_line_endings]
        # EndTest exceptions raised by end_test and not yet caught by the runtime;
        # a positive count means the submission swallowed one.
        self._end_tests = 0

    # --- used by the runtime -------------------------------------------------
    def input_errors(self, submission_str):
        """Every non-empty complaint of the input checks; never runs the code."""
        complaints = [check(submission_str) for check in self._input_checks]
        return [complaint for complaint in complaints if complaint]

    def preprocess(self, submission_str):
        """The code to run: every preprocessor applied in turn."""
        code = submission_str
        for preprocessor in self._preprocessors:
            code = preprocessor(code)
        return code

    def tests(self):
        return self._tests

    def end_test(self, message):
        """Print an error for the student and end the current test."""
        self._end_tests += 1
        print(_("*** Error: {0}").format(message))
        ended = EndTest()
        ended.from_end_test = True
        raise ended

    def caught_end_test(self):
        self._end_tests -= 1

    def uncaught_end_tests(self):
        return self._end_tests

    # --- used by grader.py ---------------------------------------------------
    def add_preprocessor(self, fn):
        self._preprocessors.append(fn)

    def add_test(self, test):
        """Add a callable test (usually a ``Test``) with short/detailed descriptions."""
        self._tests.append(test)

    def add_tests_from_class(self, test_class):
        """One test per ``test_*`` method of an instance of ``test_class``.

        Methods are taken in name order; ``test_pop_empty`` becomes the test
        "Test: pop empty" whose detailed description is the method's docstring. A
        ``compare_results`` method, if the class has one, compares every test.
        """
        import inspect

        instance = test_class()
        compare = getattr(instance, "compare_results", None)
        for name, method in inspect.getmembers(instance, inspect.ismethod):
            if name.startswith("test_"):
                short = "Test: " + name[len("test_"):].replace("_", " ")
                self.add_test(Test(method, short, method.__doc__, compare))

    def add_input_check(self, check):
        """Add ``check(code) -> complaint or None``; it must not run the code."""
        self._input_checks.append(check)


# --- preprocessors -------------------------------------------------------------

def wrap_in_string(code):
    """Turn script-style code into ``submission_code = '<the code>'``.

    The tests can then run it (several times, in chosen environments) with
    ``exec_wrapped_code`` or ``ExecWrappedStudentCodeTest``.
    """
    return "submission_code = " + repr(code)


def fix_line_endings(code):
    """Drop carriage returns (installed by default)."""
    return code.replace("\r", "")


# --- input checks ----------------------------------------------------------------
# Each factory returns check(code) -> None when the code is acceptable, else the
# message to show the student (``error_msg`` when given).

def required_substring(string, error_msg=None):
    def check(code):
        if string not in code:
            return error_msg or _("Your code should contain '{0}'.").format(string)
        return None

    return check


def prohibited_substring(string, error_msg=None):
    def check(code):
        if string in code:
            return error_msg or _("Your code should not contain '{0}'.").format(string)
        return None

    return check


def _code_tokens(code):
    """Python tokens of ``code``; raises on code the tokenizer rejects."""
    import tokenize

    # A trailing newline keeps the tokenizer out of trouble on odd endings.
    return tokenize.generate_tokens(io.StringIO(code.rstrip() + "\n").readline)


def _non_code_token_types():
    """Token types holding comments or string text (f-string parts on 3.12+)."""
    import tokenize

    names = ("COMMENT", "STRING", "FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    return {getattr(tokenize, name) for name in names if hasattr(tokenize, name)}


def _count_tokens(code, string):
    """How often ``string`` is a token of ``code`` outside comments and strings."""
    skipped = _non_code_token_types()
    count = 0
    try:
        for token in _code_tokens(code):
            if token.type not in skipped and token.string == string:
                count += 1
    except Exception:
        # Code the tokenizer rejects fails later, when it runs; count what we saw.
        pass
    return count


def prohibited_keyword(string, error_msg=None):
    def check(code):
        if _count_tokens(code, string) > 0:
            return error_msg or _('Your code cannot make use of the "{0}" keyword.').format(string)
        return None

    return check


def required_keyword(string, error_msg=None):
    def check(code):
        if _count_tokens(code, string) == 0:
            return error_msg or _('Your code must make use of the "{0}" keyword.').format(string)
        return None

    return check


prohibited_operator = prohibited_keyword
required_operator = required_keyword


def input_check_or(error_msg, *checks):
    """Passes when any of ``checks`` passes; otherwise complains with ``error_msg``."""

    def check(code):
        if any(one_check(code) is None for one_check in checks):
            return None
        return error_msg

    return check


def one_of_required_keywords(strings, error_msg=None):
    def check(code):
        if any(_count_tokens(code, string) > 0 for string in strings):
            return None
        return error_msg or _(
            "Your code must make use of at least one of the following keywords: {0}."
        ).format(strings)

    return check


def _check_occurs(text, occurs, at_least=None, at_most=None, exactly=None, error_msg=None):
    if exactly is not None and occurs != exactly:
        return error_msg or _("Your code has {0!r} {1} times, must be exactly {2}.").format(
            text, occurs, exactly)
    if at_least is not None and occurs < at_least:
        return error_msg or _("Your code has {0!r} {1} times, must be at least {2}.").format(
            text, occurs, at_least)
    if at_most is not None and occurs > at_most:
        return error_msg or _("Your code has {0!r} {1} times, can't be more than {2}.").format(
            text, occurs, at_most)
    return None


def substring_occurs(string, at_least=None, at_most=None, exactly=None, error_msg=None,
                     ignore_spacing=False):
    """``string`` must occur in the code a bounded number of times.

    With ``ignore_spacing`` spaces are removed from both the code and ``string``
    before counting.
    """

    def check(code):
        if ignore_spacing:
            occurs = code.replace(" ", "").count(string.replace(" ", ""))
        else:
            occurs = code.count(string)
        return _check_occurs(string, occurs, at_least, at_most, exactly, error_msg)

    return check


def substring_occurs_if_condstring(string, condstring, at_least=None, at_most=None, exactly=None,
                                   error_msg=None):
    """Like ``substring_occurs``, checked only when ``condstring`` is in the code."""

    def check(code):
        if condstring not in code:
            return None
        return _check_occurs(string, code.count(string), at_least, at_most, exactly, error_msg)

    return check


def token_occurs(string, at_least=None, at_most=None, exactly=None, error_msg=None):
    """Like ``substring_occurs`` but counts tokens outside comments and strings."""

    def check(code):
        return _check_occurs(string, _count_tokens(code, string), at_least, at_most, exactly,
                             error_msg)

    return check


def count_non_comment_lines(at_least=None, at_most=None, exactly=None, error_msg=None):
    """Bounds the number of lines holding code (not blank, comment or string-only)."""

    def check(code):
        skipped = _non_code_token_types()
        lines = set()
        try:
            for token in _code_tokens(code):
                if token.type in skipped or not token.string.strip():
                    continue
                lines.add(token.start[0])
        except Exception:
            # Code the tokenizer rejects fails later, when it runs.
            pass
        return _check_occurs(None, len(lines), at_least, at_most, exactly, error_msg)

    return check


def _defines_function(code, fn_name):
    import re

    return re.search(r"\bdef\s+%s\b" % re.escape(fn_name), code) is not None


def must_define_function(fn_name, error_msg=None):
    def check(code):
        if not _defines_function(code, fn_name):
            return error_msg or _("Your code must define a function named '{0}'.").format(fn_name)
        return None

    return check


def prohibited_function_definition(fn_name, error_msg=None):
    def check(code):
        if _defines_function(code, fn_name):
            return error_msg or _("Your code should NOT define a function named '{0}'.").format(
                fn_name)
        return None

    return check


def must_define_class(class_name, error_msg=None):
    def check(code):
        if "class " + class_name not in code:
            return error_msg or _(
                "Your code must define a class named '{0}'. Be sure you only have one space "
                "between the keyword 'class' and the class name.").format(class_name)
        return None

    return check


def _code_lines_without_comments(code):
    """Non-blank lines of ``code`` with any ``#`` comment cut off."""
    for line in code.split("\n"):
        hash_at = line.find("#")
        if hash_at >= 0:
            line = line[:hash_at]
        if line.replace(" ", "") != "":
            yield line


def _class_defines_method(code, class_name, method_name, stays_in_class):
    """Line-based scan: does a ``def method_name`` follow ``class class_name``?

    ``stays_in_class(line)`` decides, for a later ``class`` line, whether the
    scan is still inside the class of interest.
    """
    in_class = False
    for line in _code_lines_without_comments(code):
        if "class " + class_name in line:
            in_class = True
        elif in_class and _defines_function(line, method_name):
            return True
        elif in_class and "class " in line and not stays_in_class(line):
            in_class = False
    return False


def prohibited_class_method(class_name, method_name, error_msg=None):
    def stays_in_class(line):
        # A nested class mentioning the name keeps the scan inside, unless it
        # derives from the class of interest.
        return class_name in line and "(" + class_name + ")" not in line.replace(" ", "")

    def check(code):
        if _class_defines_method(code, class_name, method_name, stays_in_class):
            return error_msg or _(
                "The class named '{0}' should not define a method named {1}.").format(
                    class_name, method_name)
        return None

    return check


def required_class_method(class_name, method_name, error_msg=None):
    def check(code):
        if _class_defines_method(code, class_name, method_name, lambda line: class_name in line):
            return None
        return error_msg or _("The class named '{0}' should define a method named {1}.").format(
            class_name, method_name)

    return check


# --- test functions ----------------------------------------------------------------

@contextlib.contextmanager
def capture_stdout():
    """Collect what is printed inside the block into a StringIO."""
    saved = sys.stdout
    sys.stdout = buffer = io.StringIO()
    try:
        yield buffer
    finally:
        sys.stdout = saved


def _compile_wrapped(submission_module):
    """Compile ``submission_module.submission_code`` under the module's file name.

    Tracebacks then point at the student's own lines (``submission.py``, line N)
    and show them, instead of an anonymous ``<string>``.
    """
    code = submission_module.submission_code
    if not isinstance(code, str):
        return code
    filename = getattr(submission_module, "__file__", None) or "<string>"
    if not filename.startswith("<"):
        import linecache

        lines = code.splitlines(True)
        linecache.cache[filename] = (len(code), None, lines, filename)
    return compile(code, filename, "exec")


def exec_wrapped_code(environment=None, post_process=None):
    """A test function that runs the wrapped code (see ``wrap_in_string``).

    The code runs with ``environment`` as its globals; what it prints, passed
    through ``post_process(text) -> text`` when given, is the test's output.
    """
    if environment is None:
        environment = {}

    def test_fn(submission_module):
        code = _compile_wrapped(submission_module)
        with capture_stdout() as stdout:
            exec(code, environment)
        printed = stdout.getvalue()
        if post_process:
            printed = post_process(printed)
        print(printed)

    return test_fn


def exec_code_and_inspect_values(environment=None, vars_to_inspect=None, post_process=None):
    """A test function that runs the wrapped code and prints chosen variables.

    What the code prints is ignored; the output is ``repr`` of each variable of
    ``vars_to_inspect`` after the run, one per line. A missing variable raises
    NameError, which fails the test with that message.
    """
    if environment is None:
        environment = {}

    def test_fn(submission_module):
        code = _compile_wrapped(submission_module)
        with capture_stdout():
            exec(code, environment)
        for name in vars_to_inspect or ():
            if name not in environment:
                raise NameError("name %r is not defined" % (name,))
            print(repr(environment[name]))

    return test_fn


def trace_wrapped_code(inspector, error_msg):
    """A test function driving a code ``inspector`` over the wrapped code."""

    def test_fn(submission_module):
        inspector.set_source(submission_module.submission_code)
        with inspector:
            for report in inspector.inspect_dispatch():
                if not report:
                    print(error_msg)

    return test_fn


def invoke_student_function(fn_name, args, environment=None, output_writer=None):
    """A test function calling ``submission_module.<fn_name>(*args)``.

    Names in ``environment`` are first set on the submission module. The result
    is printed through ``output_writer`` (default ``repr``; see
    ``round_float_writer`` for floats).
    """
    output_writer = output_writer or repr

    def test_fn(submission_module):
        for name, value in (environment or {}).items():
            setattr(submission_module, name, value)
        fn = getattr(submission_module, fn_name)
        print(output_writer(fn(*args)))

    return test_fn


class InvokeStudentFunctionTest(Test):
    """A Test that calls one of the submission's functions and prints the result."""

    def __init__(self, fn_name, args, environment=None, output_writer=None, short_desc=None,
                 detailed_desc=None, compare=None):
        test_fn = invoke_student_function(fn_name, args, environment, output_writer)
        if short_desc is None:
            short_desc = "Test: {}({})".format(fn_name, ", ".join(repr(arg) for arg in args))
        Test.__init__(self, test_fn, short_desc, detailed_desc, compare)


class ExecWrappedStudentCodeTest(Test):
    """A Test that runs the wrapped submission (``wrap_in_string``) in ``environment``
    and compares what it prints."""

    def __init__(self, environment=None, short_desc=None, detailed_desc=None, compare=None):
        test_fn = exec_wrapped_code(environment)
        if short_desc is None:
            short_desc = "Test: run your code and compare what it prints"
        Test.__init__(self, test_fn, short_desc, detailed_desc, compare)


def round_float_writer(n):
    """An ``output_writer`` printing a number with ``n`` decimal places."""

    def write(number):
        return "%.*f" % (n, number)

    return write
