#!/usr/bin/env python3
"""The XQueue stand-in (tests/xqueue_standin, same arguments) with Nagle's algorithm off on its
connections, as nginx in front of a real XQueue has it (`tcp_nodelay on`).

The stand-in writes each reply's headers and body separately; with Nagle on, the body waits for the
client's delayed ACK, and every get_submission on a kept-alive connection takes about 40 ms more.
That would be charged to the watcher, so bench/run uses this launcher unless --standin-nagle is given.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

import xqueue_standin.handler  # noqa: E402 (binds xqueue_standin too)

# socketserver.StreamRequestHandler's own switch
xqueue_standin.handler.Handler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(xqueue_standin.main())
