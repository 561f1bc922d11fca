"""Uploaded files: job.json's ``files`` listing, ``grader_support.submitted_files()`` in every process
that runs course code, a lone .py upload graded as the submission, and unusable listings."""

import os
import signal
import unittest

from grader_support import _contract, _files

from support import Workspace, finished, write_tree

FILE_GRADER = """\
from grader_support import gradelib, submitted_files
grader = gradelib.Grader()

def use_the_data(module):
    files = submitted_files()
    print(sorted(files))
    print(module.total(files["data.csv"].decode()))

grader.add_test(gradelib.Test(use_the_data, "total of the uploaded data"))
"""
FILE_ANSWER = "def total(text):\n    return sum(int(line) for line in text.split())\n"

SQUARE_GRADER = """\
from grader_support import gradelib
grader = gradelib.Grader()
grader.add_test(gradelib.InvokeStudentFunctionTest("square", [3]))
"""
SQUARE_ANSWER = "def square(x):\n    return x * x\n"


def grade_with_files(workspace, submission, uploads, **job):
    """The job as the watcher writes it: files/<safe name> for each (name, safe name, bytes), listed in
    job.json."""
    write_tree(workspace.job, {"files/" + safe: data for _, safe, data in uploads})
    listing = [{"name": name, "path": "files/" + safe, "size": len(data)} for name, safe, data in uploads]
    return workspace.grade(submission, files=listing, **job)


class FilesTestCase(unittest.TestCase):
    files = {"grader.py": FILE_GRADER, "answer.py": FILE_ANSWER}

    def setUp(self):
        self.workspace = Workspace(self.files)

    def tearDown(self):
        self.workspace.close()

    def graded(self, submission, uploads, **job):
        run = grade_with_files(self.workspace, submission, uploads, **job)
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertIsNotNone(run.result, run.describe())
        return run


class SubmittedFilesTest(FilesTestCase):
    def test_the_grader_reads_the_files_in_both_runs(self):
        uploads = [("data.csv", "data.csv", b"1\n2\n4\n"), ("../notes.txt", "_notes.txt", b"hi")]
        run = self.graded("def total(text):\n    return sum(map(int, text.split()))\n", uploads)
        self.assertEqual(run.result["score"], 1.0, run.describe())
        self.assertEqual(run.outputs[0], "['../notes.txt', 'data.csv']\n7\n")

    def test_a_wrong_submission_still_fails_on_the_same_files(self):
        run = self.graded("def total(text):\n    return len(text)\n", [("data.csv", "data.csv", b"1\n2\n4\n")])
        self.assertEqual(run.result["score"], 0.0, run.describe())
        self.assertEqual(run.result["tests"][0][3], "['data.csv']\n7\n")

    def test_no_files_gives_an_empty_map(self):
        workspace = Workspace({"grader.py": """\
            from grader_support import gradelib
            grader = gradelib.Grader()
            grader.add_test(gradelib.Test(lambda m: print(gradelib.submitted_files()), "files"))
            """, "answer.py": "x = 1\n"})
        try:
            run = workspace.grade("x = 1\n")  # a job.json without "files", as older watchers write it
        finally:
            workspace.close()
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual(run.outputs, ["{}\n"])

    def test_input_checks_see_the_files_too(self):
        workspace = Workspace({"grader.py": """\
            from grader_support import gradelib, submitted_files
            grader = gradelib.Grader()
            grader.add_input_check(lambda code: "" if "report.txt" in submitted_files() else "Upload report.txt.")
            grader.add_test(gradelib.Test(lambda m: print(1), "one"))
            """, "answer.py": "x = 1\n"})
        try:
            without = grade_with_files(workspace, "x = 1\n", [("other.txt", "other.txt", b"")])
        finally:
            workspace.close()
        self.assertEqual(without.result["errors"], ["Upload report.txt."], without.describe())

    def test_the_student_run_reads_copies_it_cannot_change_and_not_the_job(self):
        workspace = Workspace({"grader.py": """\
            from grader_support import gradelib
            grader = gradelib.Grader()
            grader.add_test(gradelib.Test(lambda m: print(m.probe()), "probe", compare=lambda e, a: True))
            """, "answer.py": "def probe():\n    return 'answer'\n"})
        probe = (
            "import os\n"
            "from grader_support import _files\n"
            "def probe():\n"
            "    path = _files._installed['data.csv']\n"
            "    out = [os.stat(path).st_uid, oct(os.stat(path).st_mode & 0o777), os.access(path, os.W_OK),\n"
            "           os.access(os.path.dirname(path), os.W_OK)]\n"
            "    try:\n"
            "        open('/xqw/private/job/files/data.csv').read()\n"
            "    except OSError as error:\n"
            "        out.append(type(error).__name__)\n"
            "    return out\n")
        try:
            run = grade_with_files(workspace, probe, [("data.csv", "data.csv", b"1\n")])
        finally:
            workspace.close()
        self.assertEqual(run.outputs, ["[0, '0o644', False, False, 'PermissionError']\n"], run.describe())


class WaitingContainerTest(FilesTestCase):
    def test_files_reach_interpreters_started_before_the_job(self):
        process = self.workspace.start_waiting(60)
        try:
            write_tree(self.workspace.job, {"files/data.csv": b"40\n2\n"})
            self.workspace.write_job("def total(text):\n    return sum(map(int, text.split()))\n",
                                     files=[{"name": "data.csv", "path": "files/data.csv", "size": 5}])
            process.send_signal(signal.SIGWINCH)
        finally:
            run = finished(process)
        self.assertEqual(run.returncode, 0, run.describe())
        self.assertEqual((run.result["score"], run.outputs), (1.0, ["['data.csv']\n42\n"]), run.describe())


class LonePythonFileTest(FilesTestCase):
    files = {"grader.py": SQUARE_GRADER, "answer.py": SQUARE_ANSWER}

    def test_an_uploaded_py_file_is_the_submission_when_the_response_is_empty(self):
        run = self.graded("", [("Square.PY", "Square.PY", b"def square(x):\n    return x ** 2\n")])
        self.assertEqual(run.result["score"], 1.0, run.describe())
        run = self.graded("\n  \n", [("s.py", "s.py", b"def square(x):\n    return x + x\n")])
        self.assertEqual((run.result["score"], run.outputs), (0.0, ["6\n"]), run.describe())

    def test_a_typed_response_wins_over_the_file(self):
        run = self.graded(SQUARE_ANSWER, [("s.py", "s.py", b"def square(x):\n    return 0\n")])
        self.assertEqual(run.result["score"], 1.0, run.describe())

    def test_not_for_other_files_or_several_files(self):
        for uploads in ([("s.txt", "s.txt", SQUARE_ANSWER.encode())],
                        [("a.py", "a.py", SQUARE_ANSWER.encode()), ("b.py", "b.py", SQUARE_ANSWER.encode())]):
            with self.subTest(uploads=[name for name, _, _ in uploads]):
                run = self.graded("", uploads)
                self.assertEqual(run.result["score"], 0.0, run.describe())

    def test_a_file_that_is_not_utf8_is_reported_like_a_response(self):
        run = self.graded("", [("s.py", "s.py", b"def square(x):\n    return x * x  # \xff\n")])
        self.assertIn("not valid UTF-8", run.result["errors"][0])


class UnusableListingTest(unittest.TestCase):
    def setUp(self):
        self.workspace = Workspace({"grader.py": SQUARE_GRADER, "answer.py": SQUARE_ANSWER})

    def tearDown(self):
        self.workspace.close()

    def test_bad_listings_exit_2_with_a_reason(self):
        write_tree(self.workspace.job, {"files/a.py": b"x", "secret": b"s"})
        cases = [("not a list", "must be a list"),
                 ([{"name": "a.py", "path": "../secret", "size": 1}], "files/<name>"),
                 ([{"name": "a.py", "path": "files/../secret", "size": 1}], "files/<name>"),
                 ([{"name": "a.py", "path": "files/.hidden", "size": 1}], "files/<name>"),
                 ([{"name": "a.py", "path": "secret", "size": 1}], "files/<name>"),
                 ([{"name": 5, "path": "files/a.py", "size": 1}], "unique string"),
                 ([{"name": "a.py", "path": "files/a.py", "size": 1}] * 2, "unique string"),
                 ([{"name": "a.py", "path": "files/a.py", "size": "1"}], "whole number"),
                 ([{"name": "b.py", "path": "files/b.py", "size": 1}], "reading the uploaded files"),
                 ([{"name": "a.py", "path": "files/a.py", "size": 2}], "job.json says 2")]
        for listing, reason in cases:
            with self.subTest(listing=listing):
                run = self.workspace.grade("", files=listing)
                self.assertEqual(run.returncode, 2, run.describe())
                self.assertEqual(run.stdout, b"")
                self.assertIn(reason, run.stderr)

    def test_a_symlink_is_not_followed(self):
        os.makedirs(os.path.join(self.workspace.job, "files"))
        os.symlink("/etc/passwd", os.path.join(self.workspace.job, "files", "a.py"))
        run = self.workspace.grade("", files=[{"name": "a.py", "path": "files/a.py", "size": 1}])
        self.assertEqual(run.returncode, 2, run.describe())
        self.assertIn("reading the uploaded files", run.stderr)


class ReadFilesTest(unittest.TestCase):
    def test_files_over_the_image_limit_are_not_read_whole(self):
        workspace = Workspace({})
        saved = _contract.FILES_LIMIT_BYTES
        try:
            write_tree(workspace.job, {"files/a": b"12345", "files/b": b"678"})
            listed = [("a", "files/a", 5), ("b", "files/b", 3)]
            self.assertEqual(_files.read_files(workspace.job, listed), [("a", b"12345"), ("b", b"678")])
            _contract.FILES_LIMIT_BYTES = 7
            self.assertIsNone(_files.read_files(workspace.job, listed))
        finally:
            _contract.FILES_LIMIT_BYTES = saved
            workspace.close()

    def test_too_large_files_are_a_message_for_the_student(self):
        workspace = Workspace({"grader.py": SQUARE_GRADER, "answer.py": SQUARE_ANSWER})
        try:
            from grader_support import _supervisor

            workspace.write_job("", files=[])
            job = _supervisor.load_job(workspace.job)
            job.files = None  # what _read_files gives past FILES_LIMIT_BYTES
            grading = _supervisor.Grading(job, workspace.problem, 0.0, _supervisor.Crew())
            result = grading.run()
        finally:
            workspace.close()
        self.assertEqual(result["errors"], [
            "Your uploaded files are too large to be graded (the limit is %d bytes in all)."
            % _contract.FILES_LIMIT_BYTES])


if __name__ == "__main__":
    unittest.main()
