"""A private PostgreSQL cluster for tests and benchmarks: its own data folder in a temporary
directory, initdb/pg_ctl from Debian's `postgresql` package (/usr/lib/postgresql/*/bin), a free
loopback port, and always torn down by the caller. A cluster whose owner died without tearing
it down (a pytest run killed with SIGKILL) is stopped and removed by the next one to start.

It never uses a PostgreSQL the machine may already run. PostgreSQL refuses to run as root, so
when we are root (as here and in CI) the cluster runs as the `postgres` user the Debian
package creates (or `nobody`); otherwise as ourselves. Durability is switched off (fsync,
synchronous_commit): a test cluster is thrown away, and fsyncs would only slow the suite.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from linewatch.mosquitto import free_port


class PostgresMissing(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The newest installed server's bin folder (initdb, pg_ctl, postgres)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name.split(".")[0]))
    for d in reversed(dirs):
        if os.access(Path(d) / "initdb", os.X_OK) and os.access(Path(d) / "pg_ctl", os.X_OK):
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    raise PostgresMissing("PostgreSQL server not found (no /usr/lib/postgresql/*/bin/initdb): "
                          "run `sh tools/setup.sh test` (Debian: apt-get install postgresql)")


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresMissing("running as root and no `postgres` or `nobody` user to run PostgreSQL as")


OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(tmp: str | None = None) -> list[Path]:
    """Stop and remove the private clusters whose owner process is gone; returns their folders.
    A folder without an owner file is left alone (it may be one being set up)."""
    swept = []
    for workdir in Path(tmp or tempfile.gettempdir()).glob("lw-postgres-*"):
        try:
            owner = int((workdir / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        try:
            bin_dir = find_bin_dir()
        except PostgresMissing:
            return swept
        if (workdir / "data" / "postmaster.pid").exists():
            subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(workdir / "data"), "-m", "immediate", "-w",
                            "stop"], user=_run_as(), capture_output=True, timeout=60, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        swept.append(workdir)
    return swept


class PostgresCluster:
    """One server. `url(db)` names a database on it; `create_database` makes a fresh one."""

    def __init__(self, user: str = "linewatch") -> None:
        self.bin = find_bin_dir()
        self.user = user
        self.host = "127.0.0.1"
        self.port = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="lw-postgres-"))
        self.data = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.run_as = _run_as()
        self._databases = 0

    def _cmd(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.run_as, check=check,
                              capture_output=True, text=True, timeout=timeout, cwd=self.workdir)

    def start(self) -> "PostgresCluster":
        sweep_orphans(str(self.workdir.parent))
        (self.workdir / OWNER_FILE).write_text(str(os.getpid()))
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        try:
            self._cmd("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--no-sync", "--no-instructions")
        except subprocess.CalledProcessError as exc:
            raise PostgresMissing(f"initdb failed: {exc.stderr.strip()}")
        options = " ".join([
            f"-p {0}", "-c listen_addresses=127.0.0.1", f"-c unix_socket_directories={self.workdir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c max_connections=200", "-c shared_buffers=64MB"])
        for _ in range(5):   # a free port may be taken between finding it and binding it
            self.port = free_port()
            result = self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "30",
                               "-o", options.replace("-p 0", f"-p {self.port}"), "start", check=False)
            if result.returncode == 0:
                return self
            time.sleep(0.2)
        raise PostgresMissing(f"pg_ctl start failed: {result.stderr.strip()} {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg
        if name is None:
            self._databases += 1
            name = f"lw_{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
