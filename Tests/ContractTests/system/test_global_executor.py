"""Each server says in its "listening" line which global executor it runs Swift Concurrency on:
`hook` (the event loops as the generic executor, the default), `nio` (NIO's takeover) or `none`
(Swift's own pool), as `JFRAME_GLOBAL_EXECUTOR` chooses. A build where the runtime's hook cannot
be found falls back without failing (to NIO's takeover, or to Swift's own pool where that cannot
install itself either), so the line is where that shows."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN_DIR

SERVERS = [("rpc-testserver", []), ("broker", ["--data-dir", "{data}"]), ("command-service", ["--no-relay", "--data-dir", "{data}"])]


def announced_executor(binary: str, args: list[str], choice: str | None) -> str:
    environment = dict(os.environ)
    environment.pop("JFRAME_GLOBAL_EXECUTOR", None)
    if choice is not None:
        environment["JFRAME_GLOBAL_EXECUTOR"] = choice
    with tempfile.TemporaryDirectory() as directory:
        # A flag that takes the data directory is given this test's own.
        arguments = [directory if argument == "{data}" else argument for argument in args]
        process = subprocess.Popen(
            [str(BIN_DIR / binary), "--listen", "127.0.0.1:0", "--log-level", "warning", *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
        try:
            line = process.stdout.readline()
        finally:
            process.kill()
            process.wait()
    event = json.loads(line)
    assert event["event"] == "listening", line
    return event["globalExecutor"]


@pytest.mark.parametrize("binary,args", SERVERS)
def test_a_server_runs_on_the_event_loops_hook_by_default(binary, args):
    assert announced_executor(binary, args, None) == "hook"


@pytest.mark.parametrize("choice,expected", [("nio", "nio"), ("default", "none"), ("hook", "hook")])
def test_the_environment_chooses_the_global_executor(choice, expected):
    assert announced_executor("rpc-testserver", [], choice) == expected
