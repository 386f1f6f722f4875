"""The commission's side of an emulated run: master key, registry, aggregator config, and the
aggregator itself as a child process (the real `linewatch aggregator`, in real time).

    desk = Commission.prepare(folder, world, broker)   # key (0600), DB with nodes, config
    desk.start_aggregator(); ...; desk.stop_aggregator()
    incidents = desk.incidents()                       # what `linewatch incidents export` gives
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from linewatch import keys
from linewatch.emulator.met import MetReading, read_met
from linewatch.emulator.world import World
from linewatch.commission.registry import Registry
from linewatch.commission.store import open_store

CONFIG_NAME = "aggregator.toml"


class CommissionError(RuntimeError):
    pass


@dataclass
class Commission:
    folder: Path
    master_key: bytes
    config_path: Path
    db_path: Path
    process: subprocess.Popen | None = None

    @classmethod
    def prepare(cls, folder: Path, world: World, broker: tuple[str, int],
                client_id: str = "linewatch-emulated-commission", desk_listen: str = "127.0.0.1:0") -> "Commission":
        """Write (or reuse) the master key, register every node of the world (reported
        position, like `linewatch nodes add`), and write the aggregator's config with what
        the commission knows of the air (met.py: a station's reading under the `field`
        profile, the world's true wind under `ideal`, or nothing)."""
        folder.mkdir(parents=True, exist_ok=True)
        key_path, db_path = folder / "master.key", folder / "linewatch.db"
        master = keys.load_or_create(key_path)
        store = open_store(str(db_path), "NORMAL")
        try:
            registry = Registry(store)
            for n in world.nodes:
                registry.add(n.id, n.segment, n.reported_lat, n.reported_lon)
        finally:
            store.close()
        line = ", ".join("[%.7f, %.7f]" % v for v in world.line.vertices)
        config = folder / CONFIG_NAME
        config.write_text(
            "# Written by the emulator for this run.\n"
            "[broker]\nhost = %s\nport = %d\nclient_id = %s\nconnect_retries = 10\nretry_delay_s = 0.5\n\n"
            "[store]\npath = \"linewatch.db\"\nsynchronous = \"NORMAL\"\n\n"
            "[keys]\nmaster_key_file = \"master.key\"\n\n"
            "[health]\nlate_after_s = 35.0\noffline_after_s = 120.0\ntick_s = 1.0\n\n"
            "[desk]\n# Port 0: any free port (several emulated runs may share a machine); the log says which.\n"
            "listen = %s\nobservers = true\n\n"
            "[fusion]\nline = [%s]\n%s"
            % (json.dumps(broker[0]), broker[1], json.dumps(client_id), json.dumps(desk_listen), line,
               met_lines(read_met(world))))
        return cls(folder, master, config, db_path)

    def start_aggregator(self, log_path: Path | None = None, timeout_s: float = 15.0) -> None:
        """Start `linewatch aggregator` and wait until it listens (its subscription is what
        makes the broker keep frames for it)."""
        log_path = log_path or self.folder / "aggregator.log"
        self._log = open(log_path, "ab")
        self._log_start = self._log.tell()      # a second start appends: wait for its own lines
        self.process = subprocess.Popen(
            [sys.executable, "-m", "linewatch.cli", "-v", "aggregator", "--config", str(self.config_path)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_listening(log_path, timeout_s)
        except BaseException:           # not listening, or interrupted meanwhile: never left behind
            self.stop_aggregator()
            raise

    def _wait_listening(self, log_path: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommissionError("aggregator exited with %d: %s" % (self.process.returncode,
                                                                         self.log_tail(log_path)))
            if b"listening on" in log_path.read_bytes()[self._log_start:]:
                return
            time.sleep(0.05)
        raise CommissionError("aggregator not listening after %.0f s: %s" % (timeout_s, self.log_tail(log_path)))

    def stop_aggregator(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (the aggregator commits and acks what it holds), SIGKILL if it hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        code = self.process.returncode
        self.process = None
        self._log.close()
        return code

    def desk_url(self) -> str | None:
        """The desk's address, as the aggregator's log last said it (None: no desk)."""
        found = re.findall(r"desk at (http://\S+)", self.log_tail(chars=10 ** 6))
        return found[-1] if found else None

    def log_tail(self, path: Path | None = None, chars: int = 2000) -> str:
        path = path or self.folder / "aggregator.log"
        try:
            return path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def incidents(self) -> list[dict]:
        """Every incident the aggregator stored (latest state each), as the scorer reads them."""
        from linewatch.commission.incidents import incident_dicts
        store = open_store(str(self.db_path), "NORMAL")
        try:
            return incident_dicts(store)
        finally:
            store.close()

    def write_incidents(self, path: Path) -> list[dict]:
        found = self.incidents()
        path.write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in found))
        return found


def met_lines(met: MetReading) -> str:
    """The [fusion] keys a commission fills from what it knows of the air."""
    if met.source == "none":
        return "# No met station: fusion knows neither wind nor air temperature.\n"
    lines = []
    if met.source == "exact":
        lines.append("# The world's true wind (realism profile ideal).\n")
    else:
        lines.append("# The met station's reading at %.4f, %.4f when the run began (emulated, with "
                     "a cheap station's error).\n" % met.where)
    if met.temperature_c is not None:
        lines.append("temperature_c = %r\n" % max(-60.0, min(60.0, met.temperature_c)))
    lines.append("wind_speed_mps = %r\nwind_from_deg = %r\n"
                 % (min(60.0, float(met.wind_speed_mps)), float(met.wind_from_deg)))
    return "".join(lines)
