"""Grading runtime of the xqueue-watcher Python grader image.

Course graders use ``grader_support.gradelib`` (also importable as ``gradelib``)
and ``grader_support.submitted_files()``. The modules whose names start with an
underscore are the image's grading machinery (supervisor, staff process, test
runner); they are not course API.
"""


def submitted_files():
    """The files uploaded with the submission: {original file name: bytes}, in upload order.

    Empty when the student uploaded none (the response is text). Available in the
    grader's tests (for the staff answer and for the submission alike), its input
    checks, preprocessors and compare functions. The names are those the student's
    computer gave the files: look files up by them, never use them as paths.
    """
    from grader_support import _files

    return _files.submitted_files()
