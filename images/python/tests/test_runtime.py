"""What runs before course code: output capture, student tracebacks, module loading,
translations and seeds (each in a child interpreter where it changes global state)."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from grader_support import _runtime

from support import mo_file, write_tree


class BoundedOutputTest(unittest.TestCase):
    def test_keeps_at_most_the_limit(self):
        out = _runtime.BoundedOutput(5)
        self.assertEqual(out.write("abc"), 3)
        out.write("defgh")
        out.write("ijk")
        self.assertEqual(out.getvalue(), "abcde")

    def test_unbounded_keeps_everything(self):
        out = _runtime.BoundedOutput()
        for _ in range(1000):
            out.write("xy")
        self.assertEqual(len(out.getvalue()), 2000)

    def test_refuses_bytes_like_stringio(self):
        with self.assertRaises(TypeError):
            _runtime.BoundedOutput().write(b"x")

    def test_captured_stdout_with_print(self):
        with _runtime.captured_stdout(3) as out:
            print("hello")
        self.assertEqual(out.getvalue(), "hel")


class StudentTracebackTest(unittest.TestCase):
    def raised(self, source, filename):
        module = _runtime.source_module("tb_probe_" + os.urandom(3).hex(), filename, source)
        try:
            module.run()
        except Exception as error:
            return error
        self.fail("no exception")

    def test_starts_at_the_student_frame_and_shows_the_line(self):
        error = self.raised("def run():\n    return 1 / 0\n", "submission.py")
        text = _runtime.student_traceback(error, {"submission.py"})
        self.assertTrue(text.startswith('Traceback (most recent call last):\n'
                                        '  File "submission.py", line 2'), text)
        self.assertIn("return 1 / 0", text)
        self.assertNotIn(__file__, text)
        self.assertTrue(text.rstrip().endswith("ZeroDivisionError: division by zero"))

    def test_without_a_student_frame_only_the_exception_remains(self):
        try:
            {}["missing"]
        except KeyError as error:
            text = _runtime.student_traceback(error, {"submission.py"})
        self.assertEqual(text, "KeyError: 'missing'\n")

    def test_grader_paths_are_hidden(self):
        try:
            open("/tmp/xqw-view-abc/data/missing.txt")
        except OSError as error:
            text = _runtime.student_traceback(error, {"submission.py"}, ["/tmp/xqw-view-abc"])
        self.assertIn("'data/missing.txt'", text)
        self.assertNotIn("/tmp/xqw-view-abc", text)

    def test_syntax_errors_show_the_student_line(self):
        try:
            _runtime.source_module("syntax_probe", "submission.py", "x = (\n")
        except SyntaxError as error:
            text = _runtime.student_traceback(error, {"submission.py"})
        self.assertIn('File "submission.py", line 1', text)
        self.assertIn("SyntaxError", text)


class SourceModuleTest(unittest.TestCase):
    def test_module_has_the_name_file_and_source_lines(self):
        import inspect

        module = _runtime.source_module("source_probe", "probe_file.py", "def f():\n    return 42\n")
        self.assertEqual((module.__name__, module.__file__, module.f()),
                         ("source_probe", "probe_file.py", 42))
        self.assertIs(sys.modules["source_probe"], module)
        self.assertEqual(inspect.getsource(module.f), "def f():\n    return 42\n")
        self.assertFalse(module.__name__ == "__main__")


def run_child(code):
    """Run ``code`` in a fresh interpreter; returns its stdout."""
    completed = subprocess.run([sys.executable, "-I", "-B", "-c", textwrap.dedent(code)],
                               capture_output=True, text=True, timeout=60)
    if completed.returncode != 0:
        raise AssertionError(completed.stderr)
    return completed.stdout


class PrepareInterpreterTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xqw-runtime-")
        write_tree(self.dir, {
            "grader.py": "import helper\nVALUE = helper.VALUE\nTITLE = _('Title')\n",
            "helper.py": "VALUE = 'from helper'\n",
            "gradelib.py": "raise ImportError('a vendored copy must not shadow the runtime')\n",
            "conf/locale/de/LC_MESSAGES/graders.mo": mo_file({"Title": "Titel"}),
        })

    def load(self, lang):
        return run_child("""
            from grader_support import _runtime
            _runtime.prepare_interpreter(%r, %r, 5)
            grader = _runtime.load_grader(%r)
            import gradelib, random
            print(grader.VALUE, grader.TITLE, grader.__name__, gradelib.__file__.startswith('/opt/xqw'))
            print(gradelib.rand.random(), random.random())
        """ % (os.path.join(self.dir, "grader.py"), lang, os.path.join(self.dir, "grader.py")))

    def test_helpers_translation_and_runtime_first_on_the_path(self):
        first_line = self.load("de").splitlines()[0]
        self.assertEqual(first_line, "from helper Titel grader True")
        self.assertEqual(self.load("fr").splitlines()[0], "from helper Title grader True")

    def test_dashed_open_edx_codes_find_underscored_or_base_catalogs(self):
        from grader_support import _contract

        self.assertEqual(_contract.catalog_languages("pt-br"), ["pt-br", "pt_BR", "pt"])
        self.assertEqual(_contract.catalog_languages("de"), ["de"])
        self.assertEqual(_contract.catalog_languages(None), ["en"])
        self.assertEqual(self.load("de-at").splitlines()[0], "from helper Titel grader True")

    def test_seeds_are_the_same_in_every_process(self):
        import random

        seeds = self.load("en").splitlines()[1]
        self.assertEqual(seeds, self.load("en").splitlines()[1])
        self.assertEqual(seeds, "%r %r" % (random.Random(5).random(), random.Random(6).random()))


if __name__ == "__main__":
    unittest.main()
