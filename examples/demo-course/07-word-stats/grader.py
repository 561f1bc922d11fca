"""Helper modules and data files next to grader.py, a custom preprocessor, and
test inputs drawn from gradelib.rand (seeded identically for the answer and the
submission)."""
from grader_support import gradelib

import wordlib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("most_common"))
# Submissions may print while debugging; silence print without changing the code.
grader.add_preprocessor(lambda code: "def print(*args, **kwargs):\n    pass\n" + code)

helpers = {"wordlib": wordlib}
grader.add_test(gradelib.InvokeStudentFunctionTest(
    "most_common", [wordlib.WORDS], environment=helpers, short_desc="Test: the whole text"))
for size in (5, 12):
    sample = gradelib.rand.sample(wordlib.WORDS, size)
    grader.add_test(gradelib.InvokeStudentFunctionTest(
        "most_common", [sample], environment=helpers,
        short_desc="Test: %d random words" % size,
        detailed_desc="most_common(%r)" % (sample,)))
