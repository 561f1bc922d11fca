"""The command-line entry point: `python3 tests/xqueue_standin ARGS` (this directory run as a
script) or `python3 -m xqueue_standin ARGS` with tests/ on the module path; see server.main.
"""

import os
import sys

if not __package__:  # run as a directory: make the package importable by its name instead
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from xqueue_standin.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
