"""pytest plugin (loaded by pyproject's addopts): fixtures for a real broker and MicroPython."""
from __future__ import annotations

import pytest

from linewatch.testing import micropython as mp
from linewatch.mosquitto import Mosquitto


@pytest.fixture
def mosquitto(tmp_path):
    """A fresh private broker for one test (persistent, so stop()/start() keeps queued QoS 1)."""
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        yield broker


@pytest.fixture(scope="session")
def shared_mosquitto(tmp_path_factory):
    """One broker for tests that only need somewhere to publish; never stop it in a test."""
    with Mosquitto(workdir=tmp_path_factory.mktemp("shared-broker")) as broker:
        yield broker


@pytest.fixture(scope="session")
def micropython():
    """The unix port; skipped with a reason where its wheel does not exist (not x86-64 3.11)."""
    try:
        mp.find_micropython()
    except mp.MicroPythonMissing as exc:
        pytest.skip(str(exc))
    return mp


@pytest.fixture(scope="session")
def postgres_cluster():
    """One private PostgreSQL server for the session (linewatch.testing.postgres), started on
    first use and never the machine's own. Missing server binaries fail the test, with the
    command that installs them."""
    from linewatch.testing.postgres import PostgresCluster, PostgresMissing
    try:
        cluster = PostgresCluster().start()
    except PostgresMissing as exc:
        pytest.fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster):
    """A fresh, empty database on the session's server (its postgresql:// URL)."""
    return postgres_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """What open_store() takes, once per backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "linewatch.db")
    return request.getfixturevalue("postgres_url")
