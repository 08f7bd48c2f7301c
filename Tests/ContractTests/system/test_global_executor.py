"""Each server says in its "listening" line which global executor it runs Swift Concurrency on:
`hook` (the event loops as the generic executor, the default), `nio` (NIO's takeover) or `none`
(Swift's own pool), as `JFRAME_GLOBAL_EXECUTOR` chooses. A build where the runtime's hook cannot
be found falls back without failing (to NIO's takeover, or to Swift's own pool where that cannot
install itself either), so the line is where that shows. The same line says which malloc the process
runs on ("jemalloc" in release builds, MallocInUse)."""
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN_DIR

SERVERS = [("rpc-testserver", []), ("broker", ["--data-dir", "{data}"]), ("command-service", ["--no-relay", "--data-dir", "{data}"])]


def listening_line(binary: str, args: list[str], environment_changes: dict[str, str | None]) -> dict:
    """The server's "listening" line, run with `environment_changes` (None removes a variable)."""
    environment = dict(os.environ)
    for name, value in environment_changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
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
    return event


def announced_executor(binary: str, args: list[str], choice: str | None) -> str:
    return listening_line(binary, args, {"JFRAME_GLOBAL_EXECUTOR": choice})["globalExecutor"]


@pytest.mark.parametrize("binary,args", SERVERS)
def test_a_server_runs_on_the_event_loops_hook_by_default(binary, args):
    assert announced_executor(binary, args, None) == "hook"


@pytest.mark.parametrize("choice,expected", [("nio", "nio"), ("default", "none"), ("hook", "hook")])
def test_the_environment_chooses_the_global_executor(choice, expected):
    assert announced_executor("rpc-testserver", [], choice) == expected


def announced_malloc(binary: str, preload: str | None) -> str:
    return listening_line(binary, [], {"LD_PRELOAD": preload})["malloc"]


def jemalloc_library() -> str | None:
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        path = os.path.join(directory, "libjemalloc.so.2")
        if os.path.exists(path):
            return path
    return None


def test_a_server_says_which_malloc_it_runs_on():
    """A binary says "jemalloc" when it was linked with it (release builds, `-Xlinker -ljemalloc`)
    and "system" when not (`swift build`, as the tests' debug build); the second kind with jemalloc
    preloaded says "jemalloc" too, since that is then the malloc every library calls."""
    binary = str(BIN_DIR / "rpc-testserver")
    linked = "libjemalloc" in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    assert announced_malloc("rpc-testserver", None) == ("jemalloc" if linked else "system")
    if linked:
        return
    library = jemalloc_library()
    if library is None:
        pytest.skip("libjemalloc2 is not installed")
    assert announced_malloc("rpc-testserver", library) == "jemalloc"
