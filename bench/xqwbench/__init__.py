"""bench/run's library: jobs, measuring (/proc, the engine's events), the runs, and the report.

Standard library only. See docs/performance.md for what each number means.
"""
