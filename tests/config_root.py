"""A watcher config root in the native YAML form, for the end-to-end tests and the benchmark alike:
xqwatcher.yaml, xqueue_servers.yaml (one `default` server on 127.0.0.1) and conf.d/queues.yaml."""
import json
import os
import textwrap


def write_config_root(root, port, queues, *, poll_interval, login_poll_interval, requests_timeout,
                      shutdown_grace, password_variable, manager_extra="", server_extra=None):
    """`queues` maps a queue name to its settings (each value written as JSON, which YAML reads);
    the server's password is `${password_variable}`, taken from the watcher's environment.
    `server_extra` maps more keys of the `default` server (e.g. {"api": "lms"}) to their values,
    written as JSON after the password; none by default (the files are then as before)."""
    os.makedirs(os.path.join(root, "conf.d"), exist_ok=True)
    with open(os.path.join(root, "xqwatcher.yaml"), "w") as out:
        out.write(textwrap.dedent(f"""\
            poll_interval: {poll_interval}
            login_poll_interval: {login_poll_interval}
            requests_timeout: {requests_timeout}
            work_dir: {root}/jobs
            journal_dir: {root}/journal
            shutdown_grace: {shutdown_grace}
            metrics_port: 0
            """) + manager_extra)
    with open(os.path.join(root, "xqueue_servers.yaml"), "w") as out:
        out.write(textwrap.dedent(f"""\
            default:
              url: http://127.0.0.1:{port}
              username: lms
              password: ${{{password_variable}}}
            """))
        for key, value in (server_extra or {}).items():
            out.write(f"  {key}: {json.dumps(value)}\n")
    lines = ["queues:"]
    for name, settings in queues.items():
        lines.append(f"  {name}:")
        for key, value in settings.items():
            lines.append(f"    {key}: {json.dumps(value)}")
    with open(os.path.join(root, "conf.d", "queues.yaml"), "w") as out:
        out.write("\n".join(lines) + "\n")
