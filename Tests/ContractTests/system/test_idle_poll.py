"""--idle-poll-us: a server started with it answers as usual, says it polls, and reports what its
spinners did when it stops; a value out of range stops it at start with a clear message."""
import subprocess
import time

from conftest import BIN_DIR

ECHO = {"id": "m1", "account": "acct-000042", "amount": 7, "note": "hello"}


def test_a_server_with_idle_polling_answers_and_reports_its_spinners(start_server):
    server = start_server("--idle-poll-us", "500", "--log-level", "info")
    connection = server.connect()
    for _ in range(50):
        result = connection.unary("jframe.testing.v1.Echo/Get", ECHO)
        assert result.trailers == {"code": 0} and result.messages == [ECHO]
    connection.close()
    assert server.terminate() == 0
    deadline = time.monotonic() + 5
    while "idle polling stopped" not in server.log and time.monotonic() < deadline:
        time.sleep(0.01)  # the log is read by a thread
    started = [line for line in server.log.splitlines() if "idle polling: CPUs kept awake after each frame" in line]
    assert len(started) == 1 and "idle_poll.window_us=500" in started[0], server.log
    stopped = [line for line in server.log.splitlines() if "idle polling stopped" in line]
    assert len(stopped) == 1 and "idle_poll.parks=" in stopped[0], server.log


def test_an_idle_poll_window_out_of_range_is_refused_at_start():
    finished = subprocess.run(
        [str(BIN_DIR / "rpc-testserver"), "--listen", "127.0.0.1:0", "--idle-poll-us", "2000000"],
        capture_output=True, text=True, timeout=30)
    assert finished.returncode != 0
    assert "--idle-poll-us must be between 0 (off) and 1000000, got 2000000" in finished.stderr
