"""Class exercises: add_tests_from_class (one test per test_* method, in name order)
with the class's own compare_results, and the class-shape input checks."""
from grader_support import gradelib

grader = gradelib.Grader()
grader.add_input_check(gradelib.must_define_class("Stack"))
grader.add_input_check(gradelib.required_class_method("Stack", "push"))
grader.add_input_check(gradelib.required_class_method("Stack", "pop"))
grader.add_input_check(gradelib.prohibited_class_method(
    "Stack", "size", "Do not add a size method: use is_empty."))


class StackTests:
    def test_push_then_pop(self, submission):
        """s = Stack(); s.push(1); s.push(2); s.push(3); three pops"""
        stack = submission.Stack()
        for item in (1, 2, 3):
            stack.push(item)
        print(stack.pop(), stack.pop(), stack.pop())

    def test_is_empty(self, submission):
        """is_empty() before and after a push"""
        stack = submission.Stack()
        print(stack.is_empty())
        stack.push("x")
        print(stack.is_empty())

    def test_pop_from_empty(self, submission):
        """pop() on an empty stack raises IndexError"""
        stack = submission.Stack()
        try:
            stack.pop()
            print("pop() returned instead of raising IndexError")
        except IndexError:
            print("IndexError raised")

    def compare_results(self, expected, actual):
        # Trailing spaces do not matter.
        return expected.rstrip() == actual.rstrip()


grader.add_tests_from_class(StackTests)
