"""The test suite's private PostgreSQL (linewatch.testing.postgres): a cluster left running by a
pytest run killed with SIGKILL is stopped and removed by the next cluster to start, so killed runs
do not pile up servers on the machine."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from linewatch.testing import postgres

pytestmark = pytest.mark.skipif(not Path("/usr/lib/postgresql").exists(), reason="PostgreSQL server not installed")


@pytest.fixture
def tmp_path():
    """A folder the `postgres` user can reach (pytest's own is root's, 0700)."""
    import shutil
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="lw-pgtest-"))
    folder.chmod(0o755)
    yield folder
    postgres.sweep_orphans(str(folder))
    shutil.rmtree(folder, ignore_errors=True)


def _server_pid(workdir: Path) -> int:
    return int((workdir / "data" / "postmaster.pid").read_text().split()[0])


def test_a_killed_owners_cluster_is_swept_by_the_next(tmp_path):
    script = textwrap.dedent("""
        import sys, tempfile
        tempfile.tempdir = sys.argv[1]
        from linewatch.testing.postgres import PostgresCluster
        c = PostgresCluster().start()
        print(c.workdir, flush=True)
        sys.stdin.read()
    """)
    owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    workdir = Path(owner.stdout.readline().strip())
    server = _server_pid(workdir)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    os.kill(server, 0)   # the orphan still runs

    assert postgres.sweep_orphans(str(tmp_path)) == [workdir]
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        for _ in range(200):   # pg_ctl -w has waited for it; the zombie may take a moment to be reaped
            os.kill(server, 0)
            time.sleep(0.05)


def test_a_living_owners_cluster_is_left_alone(tmp_path):
    import tempfile
    old, tempfile.tempdir = tempfile.tempdir, str(tmp_path)
    try:
        with postgres.PostgresCluster() as cluster:
            assert postgres.sweep_orphans(str(tmp_path)) == []
            assert (cluster.data / "postmaster.pid").exists()
    finally:
        tempfile.tempdir = old
