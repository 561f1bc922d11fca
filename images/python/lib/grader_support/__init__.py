"""Grading runtime of the xqueue-watcher Python grader image.

Course graders use ``grader_support.gradelib`` (also importable as ``gradelib``).
The modules whose names start with an underscore are the image's grading
machinery (supervisor, staff process, test runner); they are not course API.
"""
