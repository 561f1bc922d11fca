"""A temporary config root for the benchmark's watchers: tests/config_root.py, with the benchmark's
intervals and password variable."""
import os
import subprocess
import sys
from typing import Dict, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "tests"))
import config_root  # noqa: E402

PASSWORD_VARIABLE = "XQW_BENCH_PASSWORD"


def write_config_root(root: str, port: int, queues: Dict[str, dict], poll_interval: str = "1s",
                      max_running: Optional[int] = None) -> None:
    """`queues` maps a queue name to its settings (connections, grader_root, limits, precreate, ...);
    `max_running`, when given, is the watcher's max_running_containers."""
    extra = "" if max_running is None else f"max_running_containers: {max_running}\n"
    config_root.write_config_root(root, port, queues, poll_interval=poll_interval, login_poll_interval="1s",
                                  requests_timeout="5s", shutdown_grace="60s", password_variable=PASSWORD_VARIABLE,
                                  manager_extra=extra)


def check_config(binary: str, root: str, env: dict) -> Optional[str]:
    """None when `xqueue-watcher check-config` accepts the root, else what it printed."""
    result = subprocess.run([binary, "check-config", "-d", root], capture_output=True, text=True, env=env,
                            timeout=60)
    return None if result.returncode == 0 else (result.stdout + result.stderr).strip()


def precreate_supported(binary: str, scratch: str, env: dict, value) -> Optional[str]:
    """None when the watcher's config accepts `precreate: value` on a queue, else check-config's complaint."""
    root = os.path.join(scratch, "precreate-probe")
    write_config_root(root, 1, {"probe": {"grader_root": scratch, "precreate": value}})
    return check_config(binary, root, env)
