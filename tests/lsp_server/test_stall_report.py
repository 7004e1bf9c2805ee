"""A step that runs past its expected time leaves every thread's stack in the log."""

from __future__ import annotations

import logging
import threading
import time

from lsp_server.stall import report_if_stalled, thread_stacks


def test_a_stalled_step_logs_where_each_thread_is(caplog) -> None:
    release = threading.Event()

    def stuck_in_a_named_function() -> None:
        release.wait(10)

    helper = threading.Thread(target=stuck_in_a_named_function, name="loader-under-test")
    helper.start()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="lsp_server.stall"),
            report_if_stalled("loading the test model", after_s=0.2),
        ):
            deadline = time.monotonic() + 5
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        release.set()
        helper.join()
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("loading the test model has taken")
    assert "thread loader-under-test" in message and "stuck_in_a_named_function" in message


def test_a_step_that_ends_in_time_logs_nothing(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="lsp_server.stall"):
        with report_if_stalled("a quick step", after_s=0.5):
            pass
        time.sleep(0.8)
    assert caplog.records == []


def test_thread_stacks_names_the_calling_thread() -> None:
    assert f"thread {threading.current_thread().name}:" in thread_stacks()
    assert "test_thread_stacks_names_the_calling_thread" in thread_stacks()
