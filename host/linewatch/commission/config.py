"""The aggregator's configuration: a TOML file (docs/aggregator.toml documents every field),
defaults for everything, command-line flags applied on top by the caller.

A bad file is refused as a whole with a message naming the field: a service that starts with
half its config is worse than one that does not start.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "linewatch-aggregator"
    username: str = ""
    password: str = ""
    ca_file: str = ""          # the line's CA certificate (PEM): TLS to the broker; empty: plain
    keepalive_s: int = 30
    connect_retries: int = 5
    retry_delay_s: float = 2.0


@dataclass(frozen=True)
class StoreConfig:
    path: str = "linewatch.db"
    # PostgreSQL instead of the SQLite file when set: "postgresql://user@host/db" (several
    # aggregator instances share one database; docs/scale-out.md).
    url: str = ""
    synchronous: str = "FULL"
    batch_max: int = 2000

    @property
    def target(self) -> str:
        """What open_store() opens: the PostgreSQL URL when one is set, else the SQLite file."""
        return self.url or self.path


@dataclass(frozen=True)
class KeysConfig:
    master_key_file: str = "master.key"


@dataclass(frozen=True)
class IngestConfig:
    segments: tuple[int, ...] = ()
    refusal_log_interval_s: float = 60.0
    # Refused frames kept (bytes and all) per (reason, publishing node) and in total; the rest
    # are counted only (quarantine.py). ~300 bytes a row: the defaults bound it to ~3 MB.
    quarantine_per_source: int = 100
    quarantine_total: int = 10000


@dataclass(frozen=True)
class AcksConfig:
    interval_ms: int = 200
    resend_interval_s: float = 5.0
    resend_tries: int = 3


@dataclass(frozen=True)
class HealthConfig:
    late_after_s: float = 180.0
    offline_after_s: float = 900.0
    low_battery_mv: int = 3400
    tamper_move_m: float = 50.0
    tamper_hold_s: float = 3600.0
    tick_s: float = 5.0


@dataclass(frozen=True)
class AlertsConfig:
    topic_prefix: str = "lw/alerts"
    webhooks: tuple[str, ...] = ()
    queue_size: int = 1000
    retries: int = 3
    timeout_s: float = 5.0


@dataclass(frozen=True)
class FusionConfig:
    line: tuple[tuple[float, float], ...] = ()
    tick_s: float = 1.0
    # Air temperature for the speed of sound. None: the median of the nodes' latest heartbeat
    # temperatures (15 degC until the first heartbeat).
    temperature_c: float | None = None
    # Wind for the fix (speed, and the compass bearing it blows FROM, as a met station reports).
    wind_speed_mps: float = 0.0
    wind_from_deg: float = 0.0
    # What the commission calls each side of the line: [left, right] as the vertices are drawn
    # (the parties' names, say). Used wherever an incident is told to a person.
    sides: tuple[str, ...] = ("side A", "side B")
    # Publish a sound heard by two nodes only (a hyperbola, no fix) as an incident at once.
    # Off: such a pair is held until a third node makes a fix of it (at the detectors'
    # measured false-alarm rates, unrelated lone reports pair ~100 times per node-day).
    publish_pairs: bool = False


@dataclass(frozen=True)
class ClusterConfig:
    """Several aggregator instances sharing the line (docs/scale-out.md). Empty instance: alone."""
    instance: str = ""
    # The MQTT 5 shared subscription's group: every instance takes frames from $share/<group>/...
    group: str = "linewatch"
    # How often an instance claims free segments (and gives one back above its fair share).
    claim_interval_s: float = 1.0
    # How often a segment's owner reads the frames committed for it (by any instance).
    feed_interval_ms: int = 20
    # A segment's fusion also hears the nodes of other segments this close to its own nodes,
    # so a source on a boundary is fused whole by each side (and published by one).
    margin_m: float = 12000.0
    # At a takeover the new owner replays this much of the segment's evidence into fusion.
    replay_window_s: float = 150.0
    # The broker session outlives a dead instance this long (0: the group's other members
    # take its share at once; nodes resend what it held uncommitted).
    session_expiry_s: int = 0


@dataclass(frozen=True)
class EvidenceConfig:
    # The signed evidence head (row count + last hash, docs/reliability.md): written to this
    # file and retained on lw/commission/evidence every head_interval_s while rows were added.
    # "" = the SQLite file's name + "-head.json" (no file for PostgreSQL unless set here).
    head_file: str = ""
    head_interval_s: float = 60.0

    def head_path(self, store: StoreConfig) -> str | None:
        if self.head_file:
            return self.head_file
        return None if store.url else store.path + "-head.json"


@dataclass(frozen=True)
class Place:
    """A named reference point: the daily report tells each incident as a bearing and distance
    from the nearest one ("2-5 km south-west of Krasnohorivka"), as monitors do."""
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class ReportConfig:
    # Named reference points (villages, crossroads, landmarks): [{name, lat, lon}, ...].
    # None given: the report names the nearest node instead.
    places: tuple[Place, ...] = ()


@dataclass(frozen=True)
class DeskConfig:
    """The commission's desk: the web page and JSON API the aggregator serves (docs/desk.md)."""
    # HOST:PORT to serve on; "" = no desk. Loopback by default: put it on the commission's
    # network on purpose (e.g. "0.0.0.0:8470"), never by accident. Port 0: any free port.
    listen: str = "127.0.0.1:8470"
    # Operators who may log in (linewatch desk add-operator); names and scrypt hashes only.
    # "" = the database's name + "-operators.json" (next to a SQLite file).
    operators_file: str = ""
    # A logged-in session ends this long after its last request.
    session_minutes: float = 480.0
    # Observers: anyone who can reach the address may read (map, incidents, nodes) without
    # logging in; acting (confirm, dismiss, node commands) still needs an operator.
    observers: bool = False
    # Optional offline basemap: an image file the operator provides and the corners it covers
    # as [south, west, north, east]; drawn under the line (docs/desk.md).
    basemap_file: str = ""
    basemap_bounds: tuple[float, ...] = ()

    def operators_path(self, store: StoreConfig) -> str:
        if self.operators_file:
            return self.operators_file
        return (store.path if not store.url else "linewatch") + "-operators.json"

    def address(self) -> tuple[str, int] | None:
        """(host, port), or None when the desk is off; validate() has checked the form."""
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Config:
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    acks: AcksConfig = field(default_factory=AcksConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    desk: DeskConfig = field(default_factory=DeskConfig)
    log_level: str = "INFO"


SECTIONS = {"broker": BrokerConfig, "store": StoreConfig, "keys": KeysConfig,
            "ingest": IngestConfig, "acks": AcksConfig, "health": HealthConfig,
            "alerts": AlertsConfig, "fusion": FusionConfig, "cluster": ClusterConfig,
            "evidence": EvidenceConfig, "report": ReportConfig,
            "desk": DeskConfig}
SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def load(path: str | Path | None) -> Config:
    """The config from a TOML file (None: all defaults). Relative paths in it are resolved
    against the file's folder, so the service finds its DB wherever it is started."""
    if path is None:
        return validate(Config())
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read ({exc})")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML ({exc})")
    config = from_dict(data, str(path))
    base = path.resolve().parent
    return replace(
        config,
        store=replace(config.store, path=_resolve(base, config.store.path)),
        broker=replace(config.broker, ca_file=config.broker.ca_file and _resolve(base, config.broker.ca_file)),
        keys=replace(config.keys, master_key_file=_resolve(base, config.keys.master_key_file)),
        evidence=replace(config.evidence, head_file=config.evidence.head_file
                         and _resolve(base, config.evidence.head_file)),
        desk=replace(config.desk,
                     operators_file=config.desk.operators_file and _resolve(base, config.desk.operators_file),
                     basemap_file=config.desk.basemap_file and _resolve(base, config.desk.basemap_file)))


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def from_dict(data: dict[str, Any], where: str = "config") -> Config:
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name == "log_level":
            sections[name] = value
            continue
        cls = SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"{where}: unknown section [{name}] (known: {', '.join(SECTIONS)}, log_level)")
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        sections[name] = _section(cls, value, f"{where}: [{name}]")
    return validate(Config(**sections))


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        spec = known.get(key)
        if spec is None:
            raise ConfigError(f"{where}: unknown field {key!r} (known: {', '.join(known)})")
        kwargs[key] = _coerce(value, getattr(cls(), key), f"{where} {key}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check a value against the type of its default (TOML gives lists; we keep tuples)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif default is None:        # optional numbers (unset by default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, list)
        if ok:
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    else:
        ok = False
    if not ok:
        raise ConfigError(f"{where}: {value!r} is not a {type(default).__name__}")
    return value


def validate(config: Config) -> Config:
    """Range checks that types alone cannot express."""
    b, s, a, h, f = config.broker, config.store, config.acks, config.health, config.fusion
    checks = [
        (1 <= b.port <= 65535, f"[broker] port {b.port} outside 1..65535"),
        (bool(b.client_id), "[broker] client_id must not be empty (the persistent session hangs on it)"),
        (b.connect_retries >= 0, "[broker] connect_retries must be >= 0"),
        (s.synchronous.upper() in SYNCHRONOUS, f"[store] synchronous {s.synchronous!r} not one of {SYNCHRONOUS}"),
        (s.batch_max >= 1, "[store] batch_max must be >= 1"),
        (not s.url or s.url.startswith(("postgresql://", "postgres://")),
         "[store] url must be a postgresql:// URL (or empty for the SQLite file)"),
        (all(isinstance(x, int) and 0 <= x <= 255 for x in config.ingest.segments),
         "[ingest] segments must be integers 0..255"),
        (a.interval_ms >= 1 and a.resend_tries >= 0 and a.resend_interval_s > 0,
         "[acks] interval_ms >= 1, resend_tries >= 0, resend_interval_s > 0"),
        (0 < h.late_after_s < h.offline_after_s, "[health] need 0 < late_after_s < offline_after_s"),
        (config.alerts.queue_size >= 1, "[alerts] queue_size must be >= 1"),
        (all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in config.alerts.webhooks),
         "[alerts] webhooks must be http(s) URLs"),
        (config.log_level.upper() in LOG_LEVELS, f"log_level {config.log_level!r} not one of {LOG_LEVELS}"),
        (not config.cluster.instance or bool(s.url),
         "[cluster] instance needs [store] url: instances share one PostgreSQL database"),
        (config.cluster.claim_interval_s > 0 and config.cluster.feed_interval_ms >= 1
         and config.cluster.margin_m >= 0 and config.cluster.replay_window_s >= 0
         and config.cluster.session_expiry_s >= 0,
         "[cluster] claim_interval_s > 0, feed_interval_ms >= 1, margin_m, replay_window_s, session_expiry_s >= 0"),
        (config.evidence.head_interval_s > 0, "[evidence] head_interval_s must be > 0"),
        (config.ingest.quarantine_per_source >= 0 and config.ingest.quarantine_total >= 0,
         "[ingest] quarantine_per_source and quarantine_total must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"config: {message}")
    if f.temperature_c is not None and not (
            isinstance(f.temperature_c, (int, float)) and -60 <= f.temperature_c <= 60):
        raise ConfigError("config: [fusion] temperature_c must be a number of degrees C in -60..60, got %r"
                          % (f.temperature_c,))
    if not (0 <= f.wind_speed_mps <= 60 and 0 <= f.wind_from_deg <= 360):
        raise ConfigError("config: [fusion] wind_speed_mps must be in 0..60 m/s and wind_from_deg in 0..360, "
                          "got %r, %r" % (f.wind_speed_mps, f.wind_from_deg))
    if not (len(f.sides) == 2 and all(isinstance(s, str) and s.strip() for s in f.sides)):
        raise ConfigError("config: [fusion] sides must be two names, [left, right] of the line, got %r"
                          % (f.sides,))
    _validate_desk(config.desk)
    line = f.line
    if line:
        if len(line) < 2 or not all(_is_point(p) for p in line):
            raise ConfigError("config: [fusion] line must be a list of at least two [lat, lon] points")
    return replace(config, report=replace(config.report, places=_places(config.report.places)))


def _places(values: tuple) -> tuple[Place, ...]:
    """[report] places as Place objects; each bad entry named by its position and its fault."""
    out: list[Place] = []
    for k, value in enumerate(values, 1):
        where = f"config: [report] places entry {k}"
        if isinstance(value, Place):
            value = {"name": value.name, "lat": value.lat, "lon": value.lon}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {value!r} is not a table like {{ name = \"...\", lat = 48.1, lon = 37.7 }}")
        unknown = sorted(set(value) - {"name", "lat", "lon"})
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: name, lat, lon)")
        name, lat, lon = value.get("name"), value.get("lat"), value.get("lon")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: name must be a non-empty text, got {name!r}")
        if isinstance(lat, bool) or isinstance(lon, bool) or not _is_point((lat, lon)):
            raise ConfigError(f"{where} ({name}): lat must be a number in -90..90 and lon in -180..180,"
                              f" got {lat!r}, {lon!r}")
        if any(p.name == name.strip() for p in out):
            raise ConfigError(f"{where}: the name {name.strip()!r} is given twice")
        out.append(Place(name.strip(), float(lat), float(lon)))
    return tuple(out)


def _validate_desk(d: DeskConfig) -> None:
    if d.listen:
        host, colon, port = d.listen.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError("config: [desk] listen %r: expected HOST:PORT (port 0..65535), "
                              "e.g. \"127.0.0.1:8470\", or \"\" for no desk" % d.listen)
    if not 1 <= d.session_minutes <= 7 * 24 * 60:
        raise ConfigError("config: [desk] session_minutes must be in 1..10080 (a week), got %r"
                          % d.session_minutes)
    if bool(d.basemap_file) != bool(d.basemap_bounds):
        raise ConfigError("config: [desk] basemap_file and basemap_bounds go together "
                          "(the image and the [south, west, north, east] it covers)")
    if d.basemap_bounds:
        b = d.basemap_bounds
        if not (len(b) == 4 and all(isinstance(v, (int, float)) for v in b)
                and -90 <= b[0] < b[2] <= 90 and -180 <= b[1] < b[3] <= 180):
            raise ConfigError("config: [desk] basemap_bounds must be [south, west, north, east] in degrees "
                              "with south < north and west < east, got %r" % (b,))


def _is_point(p: Any) -> bool:
    return (isinstance(p, tuple) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p)
            and -90 <= p[0] <= 90 and -180 <= p[1] <= 180)


# -- command-line flags shared by every command that reads the config --

def add_arguments(parser: Any) -> None:
    parser.add_argument("--config", "-c", help="TOML config file (default: built-in defaults)")
    parser.add_argument("--db", help="database file, or a postgresql:// URL (overrides [store] path / url)")
    parser.add_argument("--master-key", help="master key file (overrides [keys] master_key_file)")


def from_args(args: Any) -> Config:
    """The config file with the flags of `add_arguments` (and a command's own) applied."""
    config = load(getattr(args, "config", None))
    if getattr(args, "db", None):
        if args.db.startswith(("postgresql://", "postgres://")):
            config = replace(config, store=replace(config.store, url=args.db))
        else:
            config = replace(config, store=replace(config.store, path=args.db, url=""))
    if getattr(args, "master_key", None):
        config = replace(config, keys=replace(config.keys, master_key_file=args.master_key))
    broker = getattr(args, "broker", None)
    if broker:
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--broker {broker!r}: expected HOST:PORT")
        config = replace(config, broker=replace(config.broker, host=host, port=int(port)))
    if getattr(args, "instance", None):
        config = replace(config, cluster=replace(config.cluster, instance=args.instance))
    if getattr(args, "client_id", None):
        config = replace(config, broker=replace(config.broker, client_id=args.client_id))
    return validate(config)
