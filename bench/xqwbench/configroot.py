"""A temporary config root in the watcher's native YAML form (as tests/e2e/harness.py writes one)."""
import json
import os
import subprocess
import textwrap
from typing import Dict, Optional

PASSWORD_VARIABLE = "XQW_BENCH_PASSWORD"


def write_config_root(root: str, port: int, queues: Dict[str, dict], poll_interval: str = "1s") -> None:
    """`queues` maps a queue name to its settings (connections, grader_root, limits, precreate, ...)."""
    os.makedirs(os.path.join(root, "conf.d"), exist_ok=True)
    with open(os.path.join(root, "xqwatcher.yaml"), "w") as out:
        out.write(textwrap.dedent(f"""\
            poll_interval: {poll_interval}
            login_poll_interval: 1s
            requests_timeout: 5s
            work_dir: {root}/jobs
            journal_dir: {root}/journal
            shutdown_grace: 60s
            metrics_port: 0
            """))
    with open(os.path.join(root, "xqueue_servers.yaml"), "w") as out:
        out.write(textwrap.dedent(f"""\
            default:
              url: http://127.0.0.1:{port}
              username: lms
              password: ${{{PASSWORD_VARIABLE}}}
            """))
    lines = ["queues:"]
    for name, settings in queues.items():
        lines.append(f"  {name}:")
        for key, value in settings.items():
            lines.append(f"    {key}: {json.dumps(value)}")
    with open(os.path.join(root, "conf.d", "queues.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")


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
