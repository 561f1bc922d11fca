"""Turning the runs' reports into the result the watcher receives (pure functions).

The result shape and the decisions follow upstream xqueue-watcher's grading of
a Python submission: input-check complaints end grading with score 0; a staff
answer that does not run cleanly gives the staff-debug error; a submission that
does not load is shown its traceback; otherwise every test's actual output
(truncated to 5000 characters) is compared with the staff output, the score is
the fraction of tests passed and the result is correct when all passed.

Student-facing texts are gettext message ids; ``translate`` is the course's
``_`` (identity when there is no translation).
"""

import re

from grader_support import _contract

STAFF_PROBLEM = "There was a problem running the staff solution (Staff debug: L364)"
COULD_NOT_RUN = "We couldn't run your solution (Staff debug: L397)."
NO_TESTS_RAN = ("There was a problem while running your code (Staff debug: L450). "
                "Please contact the course staff for assistance.")
SUBMISSION_FAILED = "There was an error thrown while running your solution."
TEST_COUNT_MISMATCH = ("Something went wrong: different numbers of tests ran for your code and for "
                       "our reference code.")
TESTS_MISMATCH = "Something went wrong: tests don't match up."
ERROR_WORD = "ERROR"

NOT_UTF8 = ("Your submission could not be graded because it is not valid UTF-8 text (byte {0} at "
            "position {1} cannot be decoded). Save your code as UTF-8 and submit it again.")
SUBMISSION_TOO_LARGE = "Your submission is too large to be graded (the limit is {0} bytes)."
FILES_TOO_LARGE = "Your uploaded files are too large to be graded (the limit is {0} bytes in all)."
TIMED_OUT = "Your code took too long to run: it was stopped after {0} seconds."
KILLED = "Your code was stopped before it finished, probably because it used too much memory."
CRASHED = "Your code crashed the Python interpreter (signal {0})."
EXITED_EARLY = ("Your code ended the grading process before the tests finished (exit status {0}), so "
                "it could not be graded.")
TOO_MUCH_OUTPUT = "Your code produced too much output to be graded."
INTERFERED = "Your code interfered with the grading process, so it could not be graded."


def result(errors=(), tests=(), correct=False, score=0.0):
    return {"correct": bool(correct), "score": float(score), "errors": list(errors),
            "tests": list(tests)}


def error_result(translate, *messages):
    return result(errors=[translate(message) for message in messages])


def truncate(text):
    """A test's actual output as compared and shown: at most 5000 characters."""
    if len(text) > _contract.OUTPUT_LIMIT:
        return text[:_contract.OUTPUT_LIMIT] + _contract.TRUNCATION_MARK
    return text


def validated_report(report):
    """The report of a run, checked field by field; raises ValueError when malformed.

    Reports from the student run come from a process the submission controls,
    so nothing in them is trusted beyond its type.
    """
    if not isinstance(report, dict):
        raise ValueError("report is not an object")
    clean = {"exceptions": report.get("exceptions")}
    if not isinstance(clean["exceptions"], int) or isinstance(clean["exceptions"], bool):
        raise ValueError("exceptions is not an integer")
    for part in ("grader", "submission"):
        section = report.get(part)
        if not isinstance(section, dict) or not isinstance(section.get("status"), str):
            raise ValueError("%s status missing" % part)
        exception = section.get("exception")
        if exception is not None and not isinstance(exception, str):
            raise ValueError("%s exception is not text" % part)
        clean[part] = {"status": section["status"], "exception": exception}
    rows = report.get("results")
    if not isinstance(rows, list):
        raise ValueError("results is not a list")
    clean["results"] = []
    for row in rows:
        if (not isinstance(row, list) or len(row) != 3 or not isinstance(row[2], str)
                or not all(isinstance(field, str) or field is None for field in row[:2])):
            raise ValueError("a result row is malformed")
        clean["results"].append(list(row))
    return clean


def staff_run_problem(report):
    """Why the staff answer's run is unusable (for the staff log), or None when it is fine."""
    if report["grader"]["status"] != "ok":
        return "the grader failed to load for the answer run:\n%s" % report["grader"]["exception"]
    if report["submission"]["status"] != "ok":
        return "answer.py failed (%s):\n%s" % (report["submission"]["status"],
                                              report["submission"]["exception"])
    if report["exceptions"]:
        outputs = "".join("--- %s:\n%s\n" % (row[0], row[2][-2000:]) for row in report["results"])
        return "%d test(s) raised on answer.py:\n%s" % (report["exceptions"], outputs)
    return None


def student_run_errors(report, translate):
    """(errors to show, usable) for the submission's run, as upstream decides them."""
    errors = []
    if report["grader"]["status"] != "ok":
        return [translate(COULD_NOT_RUN)], False
    if report["submission"]["status"] != "ok":
        errors.append(report["submission"]["exception"] or translate(SUBMISSION_FAILED))
    return errors, True


def comparison_rows(expected_report, actual_report, translate):
    """(error or None, rows): rows are [short, long, expected, actual (truncated)] per test."""
    expected_rows = expected_report["results"]
    actual_rows = actual_report["results"]
    if len(expected_rows) != len(actual_rows):
        return translate(TEST_COUNT_MISMATCH), []
    rows = []
    for expected, actual in zip(expected_rows, actual_rows):
        if expected[0] != actual[0]:
            return translate(TESTS_MISMATCH), []
        rows.append([expected[0], expected[1], expected[2], truncate(actual[2])])
    return None, rows


def graded_result(rows, comparisons, hide_output, translate):
    """The result once each row has its [correct, end_test_message] comparison."""
    tests = []
    corrects = []
    for (short, long, expected, actual), (correct, message) in zip(rows, comparisons):
        correct = bool(correct)
        if message:
            actual += "\n*** {0}: {1} ***".format(translate(ERROR_WORD), message)
        corrects.append(correct)
        tests.append([short, long if long is not None else "", correct, expected, actual])
    count = len(corrects)
    errors = [] if count else [translate(NO_TESTS_RAN)]
    return result(errors=errors, tests=[] if hide_output else tests,
                  correct=count > 0 and all(corrects),
                  score=sum(corrects) / count if count else 0.0)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(text):
    """Text every JSON parser accepts: surrogate pairs joined, lone surrogates replaced."""
    if _SURROGATE.search(text):
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def sanitized(value):
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list):
        return [sanitized(item) for item in value]
    if isinstance(value, dict):
        return {key: sanitized(item) for key, item in value.items()}
    return value
