"""Entrypoint of the upstream-compat TEST image: grades one submission the way images built for the
Python xqueue-watcher's ContainerGrader are called (see the Dockerfile), in ONE process.

The problem directory (GRADER_PATH's directory) holds the grader module and answer.py. The grader module
names the checks: TESTS, a list of Python expressions evaluated against the staff answer and against the
submission; equal values pass. Prints from either run are captured, not written to stdout, so the
result stays the last line.
"""
import contextlib
import importlib.util
import io
import json
import os
import sys


def load_module(path):
    spec = importlib.util.spec_from_file_location("problem_grader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(code, filename):
    """The namespace `code` leaves behind, and its exception (or None)."""
    namespace = {"__name__": "__main__"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, filename, "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - the student's code may raise anything, even SystemExit
        return namespace, error
    return namespace, None


def evaluate(expression, namespace):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return repr(eval(expression, namespace))
    except BaseException as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"


def grade(grader_path, submission, hide_output):
    grader = load_module(grader_path)
    with open(os.path.join(os.path.dirname(grader_path), "answer.py"), encoding="utf-8") as answer:
        staff, staff_error = run(answer.read(), "answer.py")
    if staff_error is not None:
        raise RuntimeError(f"the staff answer raised {staff_error!r}")
    student, student_error = run(submission, "submission.py")
    if student_error is not None:
        message = f"Error in your code: {type(student_error).__name__}: {student_error}"
        return {"correct": False, "score": 0, "errors": [message], "tests": []}
    tests = []
    for expression in grader.TESTS:
        expected, actual = evaluate(expression, staff), evaluate(expression, student)
        shown = ("", "") if hide_output else (expected, actual)
        tests.append([expression, f"Checks {expression}", expected == actual, *shown])
    passed = sum(1 for test in tests if test[2])
    score = passed / len(tests) if tests else 0
    return {"correct": passed == len(tests) > 0, "score": score, "errors": [], "tests": tests}


def main():
    if len(sys.argv) != 3:
        print("usage: python3 -m compat_grader GRADER_PATH SEED", file=sys.stderr)
        return 2
    grader_path, seed = sys.argv[1], int(sys.argv[2])
    submission = os.environ.get("SUBMISSION_CODE", "")
    language = os.environ.get("GRADER_LANGUAGE", "en")
    hide_output = os.environ.get("HIDE_OUTPUT", "0") == "1"
    print(f"compat-grader: grader={grader_path} seed={seed} lang={language} hide_output={int(hide_output)}")
    print(f"compat-grader: submission of {len(submission.encode())} bytes")
    result = grade(grader_path, submission, hide_output)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
