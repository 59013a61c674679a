"""SIGTERM in `eyewear`: an exit that unwinds (so `finally` and atexit stop the embedded server), once.

The whole command under SIGTERM, with its real embedded server, is tests/e2e/test_process_faults.py.
"""

from __future__ import annotations

import signal

import pytest

from entrypoints import cli


def test_a_real_sigterm_unwinds_through_finally_with_exit_code_143(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_terminating", False)
    unwound: list[str] = []
    previous = signal.signal(signal.SIGTERM, cli._on_sigterm)
    try:
        with pytest.raises(cli.Terminated) as raised:
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                unwound.append("finally")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert unwound == ["finally"]
    assert isinstance(raised.value, SystemExit) and raised.value.code == cli.TERMINATED_EXIT_CODE == 143


def test_a_second_sigterm_does_not_cut_the_clean_up_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_terminating", False)
    with pytest.raises(cli.Terminated):
        cli._on_sigterm(signal.SIGTERM, None)
    cli._on_sigterm(signal.SIGTERM, None)  # returns: the clean-up of the first one goes on
    assert cli._terminating
