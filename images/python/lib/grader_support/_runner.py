"""Runs the grader's tests on one module (the staff answer or the submission).

Started by the supervisor as a fresh ``python3 -I`` interpreter, under the staff
uid for the answer and under the student uid for the submission. It reads one
request frame on fd 3, loads the grader from the read-only copy of the problem
directory (which never holds answer.py), executes the module source it was sent,
runs every test with stdout captured, writes one report frame on fd 4 and exits
at once (skipping atexit handlers and threads the code may have left).

Under the student uid everything here is untrusted: the submission can alter this
process at will. The supervisor therefore treats the report as data, and the
only thing the submission can change is its own outputs.

The report has the shape of upstream ``grader_support.run.run()``:
``{"grader": {"status", "exception"}, "submission": {"status", "exception"},
"results": [[short, long, output], ...], "exceptions": n}``.
"""

import os

from grader_support import _runtime, _wire, gradelib

REQUEST_FD = 3
REPORT_FD = 4


def main():
    try:
        request = _wire.read_frame(REQUEST_FD, limit=1 << 31)
    except _wire.WireError:
        return  # the supervisor finished without needing this process
    os.close(REQUEST_FD)
    report = run(request)
    _wire.write_frame(REPORT_FD, report)
    os._exit(0)


def run(request):
    module_name = request["module_name"]
    filename = module_name + ".py"
    limit = request.get("output_limit")
    hidden = [os.path.dirname(request["grader_file"]), request.get("view_dir", "")]
    student_files = {filename, "<string>"}
    output = {
        "grader": {"status": "notrun", "exception": None},
        "submission": {"status": "notrun", "exception": None},
        "results": [],
        "exceptions": 0,
    }
    _runtime.prepare_interpreter(request["grader_file"], request.get("lang"), request["seed"],
                                 request.get("files"))
    grader = _load_grader(request["grader_file"], output)
    if grader is None:
        return output

    module = _import_module(module_name, filename, request["source"], output, student_files, hidden)
    if module is not None:
        _run_tests(grader, module, limit, output, student_files, hidden)
    else:
        output["exceptions"] += 1
    if grader.uncaught_end_tests() > 0:
        # An EndTest raised by end_test never reached us: the code swallowed it.
        output["submission"]["status"] = "caught"
        output["submission"]["exception"] = gradelib._(
            "Your code interfered with our grader.  Don't use bare 'except' clauses.")
    return output


def _load_grader(grader_file, output):
    try:
        with _runtime.captured_stdout(0):
            grader = _runtime.load_grader(grader_file).grader
    except BaseException:
        output["grader"]["status"] = "error"
        output["grader"]["exception"] = _runtime.full_traceback()
        output["exceptions"] += 1
        return None
    output["grader"]["status"] = "ok"
    return grader


def _import_module(module_name, filename, source, output, student_files, hidden):
    try:
        with _runtime.captured_stdout(0):
            module = _runtime.source_module(module_name, filename, source)
    except BaseException as error:
        output["submission"]["status"] = "error"
        output["submission"]["exception"] = _runtime.student_traceback(error, student_files, hidden)
        return None
    output["submission"]["status"] = "ok"
    return module


def _run_tests(grader, module, limit, output, student_files, hidden):
    keep = None if limit is None else limit + 1
    try:
        for test in grader.tests():
            exception_text = ""
            with _runtime.captured_stdout(keep) as printed:
                try:
                    test(module)
                except gradelib.EndTest as ended:
                    _ended_test(grader, ended)
                except BaseException as error:
                    exception_text = _runtime.student_traceback(error, student_files, hidden)
                    output["exceptions"] += 1
            text = printed.getvalue()
            if text and not text.endswith("\n"):
                text += "\n"
            text += exception_text
            if limit is not None:
                text = _truncate(text, limit)
            output["results"].append([test.short_description, test.detailed_description, text])
    except BaseException:
        output["grader"]["status"] = "error"
        output["grader"]["exception"] = _runtime.full_traceback()
        output["exceptions"] += 1


def _ended_test(grader, ended):
    """An EndTest ended the test: from ``grader.end_test`` (already printed and
    counted) or raised directly by a test with a message, which is shown."""
    if getattr(ended, "from_end_test", False):
        grader.caught_end_test()
    elif ended.args and ended.args[0] is not None:
        print(gradelib._("*** Error: {0}").format(ended.args[0]))


def _truncate(text, limit):
    from grader_support import _contract

    if len(text) > limit:
        return text[:limit] + _contract.TRUNCATION_MARK
    return text


if __name__ == "__main__":
    main()
