"""Benchmark only (bench/run --output-flood): one plain function test. The flood comes from answer.py."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_test(gradelib.InvokeStudentFunctionTest("double", [21]))
