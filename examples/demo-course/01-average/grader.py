"""Function tests: InvokeStudentFunctionTest, invoke_student_function, round_float_writer."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_function("average"))
grader.add_input_check(gradelib.prohibited_function_definition("mean"))
grader.add_input_check(gradelib.prohibited_substring(
    "statistics", "Compute the average yourself; do not use the statistics module."))

two_places = gradelib.round_float_writer(2)
grader.add_test(gradelib.InvokeStudentFunctionTest("average", [[1, 2, 3, 4]], output_writer=two_places))
grader.add_test(gradelib.InvokeStudentFunctionTest(
    "average", [[2.5]], output_writer=two_places, short_desc="Test: a single number"))
grader.add_test(gradelib.Test(
    gradelib.invoke_student_function("average", [[-1, 1]], output_writer=two_places),
    "Test: numbers that cancel out",
    "The average of -1 and 1 is 0."))
