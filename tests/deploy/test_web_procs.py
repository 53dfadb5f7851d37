"""``SCALED_WEB_PROCS``: the stack's web processes are one supervisor program
with N copies, each on its own port (deploy/webproc.py), read by supervisor's
own parser from deploy/supervisord.conf."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from deploy import scaled, webproc

CONF = Path(scaled.DEPLOY) / "supervisord.conf"


def supervisor_programs(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """process name -> command line, as supervisord would start them."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    saved = dict(os.environ)
    os.environ.update(
        FMPSITE_ROOT=str(scaled.ROOT),
        FMPSITE_RUN_DIR=str(tmp_path),
        FMPSITE_PYTHON=sys.executable,
        FMPSITE_NGINX="/usr/sbin/nginx",
        FMPSITE_WEB_BIND="127.0.0.1",
        FMPSITE_MINFDS="1024",
        **env,
    )
    try:
        options = ServerOptions()
        options.realize(["-c", str(CONF)])
        return {
            process.name: process.command
            for group in options.process_group_configs
            for process in group.process_configs
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_four_web_processes_each_get_their_own_port(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALED_WEB_PROCS", "4")
    monkeypatch.delenv("SCALED_WEB_PORTS", raising=False)
    stack = scaled.stack_from_env()
    assert stack.web_ports == (8101, 8102, 8103, 8104)
    programs = supervisor_programs(
        tmp_path, {"FMPSITE_WEB_PORTS": "8101,8102,8103,8104", "FMPSITE_WEB_PROCS": "4"}
    )
    webs = sorted(name for name in programs if name.startswith("web"))
    assert webs == ["web1", "web2", "web3", "web4"]
    assert {"feed1", "feed2", "nginx"} <= set(programs)
    ports = {
        name: webproc.daphne_argv(
            int(programs[name].rsplit(" ", 1)[1]),
            {"FMPSITE_WEB_PORTS": "8101,8102,8103,8104"},
        )
        for name in webs
    }
    assert [argv[argv.index("-p") + 1] for argv in ports.values()] == [
        "8101",
        "8102",
        "8103",
        "8104",
    ]
    assert all(argv[-1] == "fmpsite.asgi:application" for argv in ports.values())


def test_the_default_stays_two_web_processes(tmp_path, monkeypatch):
    monkeypatch.delenv("SCALED_WEB_PROCS", raising=False)
    monkeypatch.delenv("SCALED_WEB_PORTS", raising=False)
    assert scaled.stack_from_env().web_ports == (8101, 8102)
    programs = supervisor_programs(
        tmp_path, {"FMPSITE_WEB_PORTS": "8101,8102", "FMPSITE_WEB_PROCS": "2"}
    )
    assert sorted(n for n in programs if n.startswith("web")) == ["web1", "web2"]


def test_procs_and_ports_that_disagree_are_refused(monkeypatch, capsys):
    monkeypatch.setenv("SCALED_WEB_PROCS", "3")
    monkeypatch.setenv("SCALED_WEB_PORTS", "9001,9002")
    with pytest.raises(SystemExit):
        scaled.stack_from_env()
    assert "one port per web process" in capsys.readouterr().err


def test_a_process_number_without_a_port_is_refused():
    with pytest.raises(SystemExit, match="no port"):
        webproc.daphne_argv(3, {"FMPSITE_WEB_PORTS": "8101,8102"})
