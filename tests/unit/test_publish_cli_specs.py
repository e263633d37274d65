"""`portscope publish` with a spec starting with '-', a zone-carrying or non-unicast target: one line, exit 2."""

from __future__ import annotations

import os

import pytest

from portscope.cli.main import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["publish", "web", "-1:80"], "'-1:80': host port '-1'"),
        (["publish", "web", "--", "-1:80"], "'-1:80': host port '-1'"),
        (["publish", "--dry-run", "web", "-80"], "'-80': container port '-80'"),
        (["publish", "fe80::1%1]:80\n-A INPUT -j ACCEPT\n#", "[::]:8082:80", "--dry-run"], "not an IP address"),
        (["publish", "web", "[fe80::1%eth0]:8082:80"], "zone"),
        (["publish", "255.255.255.255", "80"], "reserved"),
        (["publish", "0.0.0.1", "80"], "0.0.0.0/8"),
        (["publish", "169.254.1.1", "80"], "link-local"),
    ],
)
def test_bad_specs_and_targets_are_one_line_exit_2(
    argv: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # refused before root is needed: nothing is read or changed
    assert main(argv) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert out.out == "" and len(lines) == 1 and lines[0].startswith("portscope: ") and needle in lines[0], lines
