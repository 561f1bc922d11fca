"""A faithful XQueue stand-in for the end-to-end tests, the demo and the benchmark: openedx/xqueue's
pull API ("xqueue" mode) or the LMS's own XQueue API ("lms" mode, edx-submissions), plus a
test-only control API. The behaviour it promises is README.md next to this file.

  state.py        configuration, queues, sessions, submissions, files, results, request counters;
                  the xqueue-mode queue decisions
  faults.py       the fault switches
  lms_state.py    LMS mode's ExternalGraderDetail state machine and submit
  handler.py      the HTTP request handler and openedx/xqueue's /xqueue/ API
  lms_handler.py  LMS mode's /xqueue/ API (DRF checks, CSRF) and /media/ files
  control.py      the control API (/_standin/)
  server.py       the listening server, XQueueStandin (start/stop) and the command line (main)
  clients.py      StandinClient (control API) and GraderSession (a grader's side of XQueue)
  __main__.py     `python3 tests/xqueue_standin ...` or `python3 -m xqueue_standin ...`

Use:  with XQueueStandin(StandinConfig(processing_delay=1)) as xq: xq.client().submit(...)
Standard library only.
"""

from .clients import GraderSession, HttpReply, StandinClient
from .server import DEFAULT_PROCESSING_DELAY, XQueueStandin, main
from .state import MODES, StandinConfig, StandinState, compose_reply

__all__ = ["DEFAULT_PROCESSING_DELAY", "GraderSession", "HttpReply", "MODES", "StandinClient",
           "StandinConfig", "StandinState", "XQueueStandin", "compose_reply", "main"]
