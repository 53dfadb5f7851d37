"""``make scaled``: the production shape on one machine, with one command.

    .venv/bin/python -m deploy.scaled              # run it (Ctrl-C stops everything)
    .venv/bin/python -m deploy.scaled manage ARGS  # manage.py with the stack's env
    .venv/bin/python -m deploy.scaled ctl status   # supervisorctl (restart web:web1)
    .venv/bin/python -m deploy.scaled nginx-site   # print the nginx site config

It prepares what the processes need (the PostgreSQL database, migrations,
``collectstatic``, a secret key kept in the run directory, the nginx config) and
then runs deploy/supervisord.conf in the foreground: nginx on ``PORT`` in front of
``SCALED_WEB_PROCS`` daphne web processes (2 unless set), and two ``runworker
fmp-feed`` (leader and hot standby), each restarted by supervisor when it dies.
Settings are ``fmpsite.settings.production`` with plain HTTP allowed (no TLS on
one machine); every knob is an environment variable (.env.example, "make scaled").
"""

from __future__ import annotations

import grp
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

sys.path.insert(0, str(ROOT))
# Reads .env into os.environ (the real environment wins), like every process.
from fmpsite.settings import env as _env  # noqa: E402

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/fmpsite",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_SETTINGS_MODULE": "fmpsite.settings.production",
    # One machine, no TLS: plain-HTTP cookies and no https redirect. Behind a TLS
    # terminator set both to true (docs/deploying.md).
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_SECURE_COOKIES": "false",
}


@dataclass(frozen=True)
class Stack:
    host: str
    port: int
    web_ports: tuple[int, ...]
    run_dir: Path
    static_root: Path
    body_limit: str
    nginx: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def log(message: str) -> None:
    print(f"scaled: {message}", flush=True)


def fail(message: str) -> None:
    print(f"scaled: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def stack_from_env() -> Stack:
    """The stack's shape: ``PORT``, ``SCALED_*`` (.env.example documents each)."""
    try:
        procs = _env.env_int("SCALED_WEB_PROCS", 0)
        default = ",".join(str(8101 + i) for i in range(procs or 2))
        ports = [int(p) for p in _env.env_list("SCALED_WEB_PORTS", default)]
        port = _env.env_int("PORT", 8000)
    except Exception as exc:  # ImproperlyConfigured or ValueError: say which
        fail(str(exc))
    if procs < 0 or (procs and len(ports) != procs):
        fail(
            f"SCALED_WEB_PROCS={procs} but SCALED_WEB_PORTS names {len(ports)} "
            "ports: name one port per web process, or set only one of them"
        )
    if not ports or len(set(ports)) != len(ports):
        fail("SCALED_WEB_PORTS must name one distinct port per web process")
    run_dir = Path(_env.env_str("SCALED_RUN_DIR", str(ROOT / ".run" / "scaled")))
    static_root = Path(
        _env.env_str("DJANGO_STATIC_ROOT", str(ROOT / "staticfiles"))
    ).resolve()
    nginx = _env.env_str("SCALED_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    return Stack(
        host=_env.env_str("HOST", "127.0.0.1"),
        port=port,
        web_ports=tuple(ports),
        run_dir=run_dir.resolve(),
        static_root=static_root,
        body_limit=_env.env_str("SCALED_BODY_LIMIT", "1m"),
        nginx=nginx,
    )


def secret_key(run_dir: Path) -> str:
    """``DJANGO_SECRET_KEY`` if set, else one generated once into the run dir."""
    key = _env.env_str("DJANGO_SECRET_KEY")
    if key:
        problem = _env.secret_key_problem(key)
        if problem:
            fail(f"DJANGO_SECRET_KEY is refused: {problem}; unset it to get one")
        return key
    path = run_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    run_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Readable by its owner only, from the first byte.
    with os.fdopen(
        os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w"
    ) as f:
        f.write(key + "\n")
    return key


def app_env(stack: Stack) -> dict[str, str]:
    """The environment of every process of the stack (and of ``manage``)."""
    env = dict(os.environ)
    for name, value in DEFAULTS.items():
        if not env.get(name, "").strip():
            env[name] = value
    env["DJANGO_DEBUG"] = "false"
    env["DJANGO_SECRET_KEY"] = secret_key(stack.run_dir)
    env["DJANGO_STATIC_ROOT"] = str(stack.static_root)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(
        FMPSITE_ROOT=str(ROOT),
        FMPSITE_RUN_DIR=str(stack.run_dir),
        FMPSITE_PYTHON=sys.executable,
        FMPSITE_NGINX=stack.nginx,
        FMPSITE_WEB_BIND="127.0.0.1",
        FMPSITE_WEB_PORTS=",".join(str(p) for p in stack.web_ports),
        FMPSITE_WEB_PROCS=str(len(stack.web_ports)),
        FMPSITE_MINFDS=str(minfds()),
    )
    return env


def minfds() -> int:
    """supervisord's ``minfds``: open files for it and every program it starts
    (a web process holds one per connection). As many as this user's hard limit
    allows, up to 65,536: supervisord refuses to start when asked for more than
    an unprivileged user may have (docs/deploying.md, "Open files")."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)


def ensure_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        fail(f"Redis at REDIS_URL={url} is not answering ({exc}); start it first")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` when it does not exist."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        return
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "connect_timeout": 5,
    }
    params = {k: v for k, v in params.items() if v is not None}
    try:
        with psycopg.connect(dbname=config["NAME"], **params):
            return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            fail(f"PostgreSQL at DATABASE_URL is not reachable: {exc}")
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            name = config["NAME"].replace('"', '""')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        fail(f"could not create database {config['NAME']!r}: {exc}")
    log(f"created database {config['NAME']}")


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def render(template: str, values: dict[str, str]) -> str:
    text = (DEPLOY / "nginx" / template).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    if "{{" in text:
        raise ValueError(f"unrendered placeholder in {template}")
    return text


def site_values(stack: Stack, upstreams: list[str], server_name: str) -> dict:
    return {
        "LISTEN": f"{stack.host}:{stack.port}",
        "SERVER_NAME": server_name,
        "BODY_LIMIT": stack.body_limit,
        "STATIC_ROOT": str(stack.static_root),
        "UPSTREAM_SERVERS": "\n".join(
            f"    server {u} max_fails=1 fail_timeout=2s;" for u in upstreams
        ),
    }


def write_nginx_config(stack: Stack) -> Path:
    conf_dir = stack.run_dir / "nginx"
    (conf_dir / "tmp").mkdir(parents=True, exist_ok=True)
    (stack.run_dir / "logs").mkdir(parents=True, exist_ok=True)
    upstreams = [f"127.0.0.1:{p}" for p in stack.web_ports]
    site = render("site.conf.template", site_values(stack, upstreams, "_"))
    (conf_dir / "site.conf").write_text(site)
    user_line = ""
    if os.geteuid() == 0:
        # Workers read the collected files and write temp files as the owner of
        # the checkout (root here); the distribution's nginx uses www-data.
        owner = pwd.getpwuid(ROOT.stat().st_uid)
        user_line = f"user {owner.pw_name} {grp.getgrgid(owner.pw_gid).gr_name};"
    # As many descriptors as this user may open (up to 8192), so nginx never
    # promises connections it cannot accept.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    main = render(
        "nginx.conf.template",
        {"RUN_DIR": str(stack.run_dir), "USER_LINE": user_line, "NOFILE": str(nofile)},
    )
    path = conf_dir / "nginx.conf"
    path.write_text(main)
    return path


def supervisorctl() -> list[str]:
    """supervisorctl for deploy/supervisord.conf (needs ``app_env``'s variables)."""
    conf = str(DEPLOY / "supervisord.conf")
    return [sys.executable, "-m", "supervisor.supervisorctl", "-c", conf]


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        fail(f"manage.py {' '.join(args)} failed (exit {result.returncode})")


def wait_healthy(stack: Stack, supervisor: subprocess.Popen, timeout: float) -> bool:
    url = f"{stack.url}/api/v2/realtime/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisor.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def prepare(stack: Stack) -> dict[str, str]:
    """Everything before supervisord starts; returns the processes' environment."""
    if not Path(stack.nginx).exists() and not shutil.which(stack.nginx):
        fail(
            f"nginx not found ({stack.nginx}); install Debian's package: "
            "apt-get install -y nginx (or set SCALED_NGINX)"
        )
    for port in (stack.port, *stack.web_ports):
        if not port_free(stack.host if port == stack.port else "127.0.0.1", port):
            fail(
                f"port {port} is in use (`make run`, or another stack?); "
                "set PORT / SCALED_WEB_PORTS"
            )
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    env = app_env(stack)
    ensure_redis(env["REDIS_URL"])
    ensure_database(env["DATABASE_URL"])
    manage(env, "migrate", "--noinput")
    log(f"collectstatic into {stack.static_root}")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    conf = write_nginx_config(stack)
    check = subprocess.run(
        [stack.nginx, "-t", "-q", "-p", f"{conf.parent}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        env=env,
    )
    if check.returncode != 0:
        fail(f"nginx rejects {conf}:\n{check.stderr}")
    return env


def run() -> int:
    started = time.monotonic()
    stack = stack_from_env()
    env = prepare(stack)
    for stale in ("supervisor.sock", "supervisord.pid", "nginx/nginx.pid"):
        (stack.run_dir / stale).unlink(missing_ok=True)
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supervisor.supervisord",
            "-c",
            str(DEPLOY / "supervisord.conf"),
        ],
        cwd=ROOT,
        env=env,
    )

    def forward(signum: int, _frame: object) -> None:
        if supervisor.poll() is None:
            supervisor.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    if wait_healthy(stack, supervisor, _env.env_float("SCALED_START_TIMEOUT", 90)):
        log(
            f"ready in {time.monotonic() - started:.0f} s: {stack.url}/ "
            f"(nginx -> {len(stack.web_ports)} daphne on 127.0.0.1:"
            f"{','.join(str(p) for p in stack.web_ports)}, "
            f"2 x runworker fmp-feed); logs in "
            f"{stack.run_dir}/logs; Ctrl-C stops everything"
        )
        log(
            "log in with a user of this database: "
            f"{sys.executable} -m deploy.scaled manage createsuperuser"
        )
    elif supervisor.poll() is None:
        log(f"not healthy yet; see {stack.run_dir}/logs (still running)")
    code = supervisor.wait()
    log(f"stopped (supervisord exit {code})")
    return code


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "manage":
        stack = stack_from_env()
        env = app_env(stack)
        return subprocess.run(
            [sys.executable, "manage.py", *argv[1:]], cwd=ROOT, env=env
        ).returncode
    if command == "ctl":
        stack = stack_from_env()
        return subprocess.run(
            [*supervisorctl(), *argv[1:]], cwd=ROOT, env=app_env(stack)
        ).returncode
    if command == "nginx-site":
        stack = stack_from_env()
        upstreams = _env.env_list(
            "SCALED_UPSTREAMS", ",".join(f"127.0.0.1:{p}" for p in stack.web_ports)
        )
        server_name = _env.env_str("SCALED_SERVER_NAME", "_")
        print(render("site.conf.template", site_values(stack, upstreams, server_name)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
