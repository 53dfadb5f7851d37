"""Child processes of a benchmark run, and what /proc says about them.

Every process the harness starts goes through ``Proc``: its own session (so a
stop reaches its children too), a log file, a bounded stop (SIGTERM, then SIGKILL),
and registration in ``Proc.running`` so that ``stop_all()`` in the runner's
``finally`` never leaves one behind.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return 0.0
    # The command name may contain spaces; fields restart after its ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def raise_nofile() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit, as an operator's
    ``ulimit -n``, ``LimitNOFILE`` or supervisor ``minfds`` would (docs/deploying.md).

    Children inherit the soft limit, so calling it once in the harness covers the
    servers, the simulator and the load clients it starts. Returns (soft, hard).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def sockstat() -> dict[str, int]:
    """The kernel's TCP socket counters (``/proc/net/sockstat``): sockets in use,
    allocated, TIME_WAIT, and ``mem_bytes``, the pages TCP buffers hold, in bytes.

    System-wide: both ends of every loopback connection count, and so does anything
    else running on the machine.
    """
    out: dict[str, int] = {}
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()[1:]
                    out = {
                        k: int(v) for k, v in zip(parts[::2], parts[1::2], strict=True)
                    }
    except OSError:
        return {}
    if "mem" in out:
        out["mem_bytes"] = out["mem"] * PAGE_SIZE
    slab = socket_slab_bytes()
    if slab is not None:
        out["slab_bytes"] = slab
    return out


def socket_slab_bytes() -> int | None:
    """Kernel memory of the TCP socket objects themselves (``TCP`` and
    ``sock_inode_cache`` slabs: active objects x object size), which sockstat's
    ``mem`` (buffers only) leaves out; None where /proc/slabinfo is unreadable
    (it needs root)."""
    total = 0
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in ("TCP", "sock_inode_cache"):
                    total += int(parts[1]) * int(parts[3])
    except (OSError, ValueError, IndexError):
        return None
    return total


def base_env(**overrides: str) -> dict[str, str]:
    """The environment without any project setting leaking in from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "FMP_", "REALTIME_", "REDIS_", "DATABASE_", "BENCH_")
        )
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


class Proc:
    """A child process with a log file; stopped by ``stop()`` or ``stop_all()``."""

    running: ClassVar[list[Proc]] = []

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        cwd: Path = ROOT,
    ) -> None:
        self.cwd = cwd
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.aproc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self.aproc is not None:
            return self.aproc.pid
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        Proc.running.append(self)
        return self

    async def astart(self) -> Proc:
        """Start with stdin/stdout pipes for a line-based control protocol."""
        log = self.log_path.open("ab")
        self.aproc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            limit=64 * 1024 * 1024,
        )
        log.close()
        Proc.running.append(self)
        return self

    def alive(self) -> bool:
        if self.aproc is not None:
            return self.aproc.returncode is None and _pid_alive(self.aproc.pid)
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not listening on {port} after {timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        if self in Proc.running:
            Proc.running.remove(self)
        pid = self.pid if (self.popen or self.aproc) else None
        if pid is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if not _pid_alive(pid):
                break
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.02)
        if self.popen is not None:
            try:
                self.popen.wait(1)
            except subprocess.TimeoutExpired:
                pass

    @classmethod
    def stop_all(cls) -> None:
        for proc in list(reversed(cls.running)):
            proc.stop(timeout=3.0)


def _pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    state = raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3]
    return state != b"Z"  # a zombie has exited; its parent reaps it


def python() -> str:
    return sys.executable
