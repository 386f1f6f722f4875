"""Which stretches of audio each node hears in a run, the same for both tiers.

A node hears: windows around the arrivals and audible tracks (synth.Synthesizer.spans), the
background's transients (background.py), quiet around a tamper action (the node reads its
accelerometer once per audio block), digital silence where a node's microphone is dead (a
`node_silent` fault), and, between all of these, its detectors' false alarms
on the steady background: a Poisson process per class at the rate measured from the real
detectors on that background (false_alarms.steady_rates: by the profile's background model,
the scenario's wind and whether it rains at the node), each played as a short stand-in sound
that the node's own detector reports as that class (`with_stand_ins`). A stretch around a
source goes on SETTLE_S after it, so that the detectors end what they heard within it (the
stretches are fed one after the other with no gap in the sample index).
"""
from __future__ import annotations

import math

import numpy as np

from linewatch.emulator import false_alarms as fa
from linewatch.emulator.randomness import stream
from linewatch.emulator.sources import NodeFault, Tamper
from linewatch.emulator.synth import SAMPLE_RATE, amplitude_rms

TAMPER_PAD_S = 1.0
# Stretches are handed to a node's detectors one after the other with no gap in the sample
# index, so whatever a detector still holds at a stretch's end goes on in the next one, minutes
# later: the vehicle detector ends an event after 2 s of quiet (plus its ~160 ms average), and
# a source's stretch ended 1 s after it was last audible, so a pass was reported at the next
# stretch, its onset dated by that stretch's clock (minutes late). Every stretch around a
# source now goes on this long after it, as the node would go on hearing its background.
SETTLE_S = 2.5
FALSE_ALARM_SPAN_S = (1.0, 2.5)      # audio around a stand-in: settle before, the drone's 2 s after
STAND_IN_SNR_DB = {"unknown": 20.0, "explosion": 30.0, "small_arms": 25.0, "drone": 12.0}


def plan(scenario, world, synth, node_ids=None, rates: dict | None = None) -> dict[int, list]:
    """Per node, merged (start_s, end_s, [(time_s, class), ...]) stretches of audio to feed.
    `rates` (per class per hour) replaces the measured ones for every node."""
    keep = set(world.node_ids.tolist()) if node_ids is None else set(node_ids)
    raw: dict[int, list] = {}
    for node_id in (synth.arrivals.keys() | synth.exposures.keys()) & keep:
        raw.setdefault(node_id, []).extend((a, b + SETTLE_S, []) for a, b in synth.spans(node_id))
    for node_id in keep:
        for a, b in synth.background.spans(node_id, scenario.duration_s):
            raw.setdefault(node_id, []).append((a, b + SETTLE_S, []))
    for s in scenario.sources:
        if isinstance(s, Tamper) and s.node_id in keep:
            raw.setdefault(s.node_id, []).append(
                (max(0.0, s.time_s - TAMPER_PAD_S), s.end_s + TAMPER_PAD_S + SETTLE_S, []))
    before, after = FALSE_ALARM_SPAN_S
    for t, node_id, cls in false_alarms(world, synth.background, scenario.duration_s, scenario.seed,
                                        sorted(keep), rates):
        raw.setdefault(node_id, []).append((max(0.0, t - before), t + after, [(t, cls)]))
    return {node_id: merge(spans) for node_id, spans in raw.items()}


def false_alarms(world, background, duration_s: float, seed: int, node_ids,
                 rates: dict | None = None) -> list[tuple[float, int, str]]:
    """(time_s, node id, class), sorted: the detectors' false alarms on the steady background."""
    model = world.profile.background.model
    wind = world.environment.wind_speed_mps
    if rates is None:
        conditions = [(False, fa.steady_rates(model, wind, False)), (True, fa.steady_rates(model, wind, True))]
    else:
        conditions = [(None, rates)]
    out = []
    for node_id in node_ids:
        segment = world.node(node_id).segment
        for rain, table in conditions:
            for cls, rate in sorted(table.items()):
                if rate <= 0:
                    continue
                rng = stream(seed, "false-alarm", int(node_id), cls, -1 if rain is None else int(rain))
                for t in rng.uniform(0.0, duration_s, int(rng.poisson(rate * duration_s / 3600.0))):
                    if rain is None or background.raining(segment, float(t)) == rain:
                        out.append((float(t), int(node_id), cls))
    return sorted(out)


def samples(start_s: float, end_s: float, duration_s: float, block: int) -> tuple[int, int]:
    """The true sample indices [first, last) of a stretch as both tiers feed it: whole firmware
    blocks from its start, none past the scenario's end (a run ends there: what a node would
    hear later is heard by no tier). first >= last: nothing to feed."""
    first = int(math.floor(start_s * SAMPLE_RATE))
    last = first + -(-int(math.ceil(end_s * SAMPLE_RATE) - first) // block) * block
    end = int(math.floor(duration_s * SAMPLE_RATE))
    if last > end:
        last = first + max(0, end - first) // block * block
    return first, last


def merge(spans: list[tuple[float, float, list]]) -> list[tuple[float, float, list]]:
    merged: list[list] = []
    for start, end, alarms in sorted(spans, key=lambda s: s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = merged[-1][2] + alarms
        else:
            merged.append([start, end, list(alarms)])
    return [(a, b, c) for a, b, c in merged]


def with_stand_ins(samples: np.ndarray, first_sample: int, alarms: list, floor_db: float) -> np.ndarray:
    """The samples with a stand-in sound at each (time_s, class) false alarm: a short local
    sound at this node only, which its detector reports as that class."""
    out = samples.astype(np.float64)
    for ts, cls in alarms:
        wave = stand_in(cls, floor_db)
        at = int(round(ts * SAMPLE_RATE)) - first_sample
        lo, hi = max(0, at), min(len(out), at + len(wave))
        if hi > lo:
            out[lo:hi] += wave[lo - at:hi - at]
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def stand_in(cls: str, floor_db: float) -> np.ndarray:
    amp = float(amplitude_rms(floor_db + STAND_IN_SNR_DB.get(cls, 20.0))) * math.sqrt(2.0)
    if cls == "drone":                       # 2 s of a blade-pass tone and its harmonics
        t = np.arange(int(2.0 * SAMPLE_RATE)) / SAMPLE_RATE
        phase = 2 * np.pi * 160.0 * t
        ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.1)
        return amp * ramp * (np.sin(phase) + 0.6 * np.sin(2 * phase) + 0.4 * np.sin(3 * phase))
    if cls == "explosion":                   # a thump: 60 ms at 80 Hz, decaying
        t = np.arange(int(0.1 * SAMPLE_RATE)) / SAMPLE_RATE
        return amp * np.sin(2 * np.pi * 80.0 * t) * np.exp(-t / 0.03)
    if cls == "small_arms":                  # a knock on the mast: 900 Hz ringing for 2 ms
        t = np.arange(int(0.01 * SAMPLE_RATE)) / SAMPLE_RATE
        return amp * np.sin(2 * np.pi * 900.0 * t) * np.exp(-t / 0.002)
    t = np.arange(int(0.08 * SAMPLE_RATE)) / SAMPLE_RATE     # unknown: a squeak, 80 ms at 3 kHz
    return amp * np.sin(2 * np.pi * 3000.0 * t) * np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)


def silenced(samples: np.ndarray, first_sample: int, faults, node_id: int) -> np.ndarray:
    """The samples with digital silence wherever the node's microphone is dead (a `silent`
    fault: the node stays connected and keeps its heartbeat, its detectors hear nothing)."""
    out = samples
    for f in faults:
        if isinstance(f, NodeFault) and f.kind == "silent" and f.node_id == node_id:
            lo = int(math.ceil(f.time_s * SAMPLE_RATE)) - first_sample
            hi = len(samples) if f.duration_s is None else \
                int(math.ceil((f.time_s + f.duration_s) * SAMPLE_RATE)) - first_sample
            lo, hi = max(0, lo), min(len(samples), hi)
            if hi > lo:
                out = out.copy() if out is samples else out
                out[lo:hi] = 0
    return out
