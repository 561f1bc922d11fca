"""The staff process: the grader's input checks, preprocessors and comparisons.

Started by the supervisor as a fresh ``python3 -I`` interpreter under the staff
uid. It never runs the answer or the submission; it only loads the grader and
calls its functions on text:

1. request ``{"grader_file", "lang", "seed", "submission", "answer"}`` on fd 3 →
   reply on fd 4 ``{"status": "ok", "input_errors": [...], "answer": str,
   "submission": str}`` (preprocessed, tabs expanded first), or
   ``{"status": "grader_error" | "check_error", "detail": traceback}``.
2. request ``{"pairs": [[expected, actual], ...]}`` → reply
   ``{"results": [[correct, end_test_message or null], ...]}``, one per test, each
   compared by that test's ``compare_results``. Student output is only ever
   passed to the grader's compare functions as a string.
"""

import sys

from grader_support import _runtime, _wire, gradelib

REQUEST_FD = 3
REPLY_FD = 4


def main():
    try:
        request = _wire.read_frame(REQUEST_FD, limit=1 << 31)
    except _wire.WireError:
        return  # the supervisor finished without needing this process
    _runtime.prepare_interpreter(request["grader_file"], request.get("lang"), request["seed"],
                                 request.get("files"))
    grader, reply = check_and_preprocess(request)
    _wire.write_frame(REPLY_FD, reply)
    if grader is None or reply.get("input_errors"):
        return
    try:
        comparison = _wire.read_frame(REQUEST_FD, limit=1 << 31)
    except _wire.WireError:
        return  # the supervisor did not need a comparison
    _wire.write_frame(REPLY_FD, {"results": compare(grader, comparison["pairs"])})


def check_and_preprocess(request):
    """Returns (grader or None, reply)."""
    try:
        grader = _runtime.load_grader(request["grader_file"]).grader
    except BaseException:
        return None, {"status": "grader_error", "detail": "loading the grader:\n" + _runtime.full_traceback()}
    submission = request["submission"]
    try:
        errors = [str(error) for error in grader.input_errors(submission)]
    except BaseException:
        return None, {"status": "check_error", "detail": "an input check:\n" + _runtime.full_traceback()}
    if errors:
        return grader, {"status": "ok", "input_errors": errors}
    try:
        answer = _preprocessed(grader, request["answer"])
    except BaseException:
        return None, {"status": "grader_error",
                      "detail": "preprocessing answer.py:\n" + _runtime.full_traceback()}
    try:
        submission = _preprocessed(grader, submission)
    except BaseException:
        return None, {"status": "check_error",
                      "detail": "preprocessing the submission:\n" + _runtime.full_traceback()}
    return grader, {"status": "ok", "input_errors": [], "answer": answer, "submission": submission}


def _preprocessed(grader, code):
    # Python 2 era answers and submissions mix tabs and spaces; Python 3 rejects that.
    processed = grader.preprocess(code.expandtabs(4))
    if not isinstance(processed, str):
        raise TypeError("a preprocessor returned %s, not str" % type(processed).__name__)
    return processed


def compare(grader, pairs):
    results = []
    for index, (test, (expected, actual)) in enumerate(zip(grader.tests(), pairs)):
        message = None
        try:
            correct = bool(test.compare_results(expected, actual))
        except gradelib.EndTest as ended:
            correct = False
            if ended.args and ended.args[0] is not None and str(ended.args[0]).strip():
                message = str(ended.args[0])
        except Exception:
            correct = False
            sys.stderr.write("xqw-staff: compare_results of test %d raised; counted as failed:\n%s"
                             % (index + 1, _runtime.full_traceback()))
        results.append([correct, message])
    return results


if __name__ == "__main__":
    main()
