"""The benchmark's trivial exercise: five calls of a one-line function, so a container's cost is
mostly the engine's and the interpreters' start, not the grading."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("double"))

grader.add_test(gradelib.InvokeStudentFunctionTest("double", [3]))
grader.add_test(gradelib.InvokeStudentFunctionTest("double", [0]))
grader.add_test(gradelib.InvokeStudentFunctionTest("double", [-7]))
grader.add_test(gradelib.InvokeStudentFunctionTest("double", [2.5], short_desc="Test: a float"))
grader.add_test(gradelib.InvokeStudentFunctionTest("double", ["ab"], short_desc="Test: a string"))
