"""What the service counts, for ``GET /metrics`` (Prometheus; consult/api/metrics.py).

A registry per application, not the library's global one: two apps in one process (tests)
never mix their numbers. The soak test reads these to prove that nothing is left behind.

Media counts come from aiortc's ``getStats()`` of every live server peer, read when scraped,
plus the final counts of the peers that have closed (kept by role), so the ``_total`` series
only ever grow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .media.peer import PeerStats, ServerPeer
from .roles import Role

if TYPE_CHECKING:
    from .recording.schedule import BackupStatus
    from .signaling.hub import Hub

__all__ = ["Metrics"]

CaptureSource = Literal["camera", "native", "video"]
#: Seconds from the stylist's Capture to a still saved: a camera photo needs the customer's
#: page to take and upload it, a stream still a burst of decoded frames.
CAPTURE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)


class Metrics:
    def __init__(
        self,
        hub: Callable[[], Hub | None],
        backups: Callable[[], BackupStatus | None] = lambda: None,
        *,
        bus: Callable[[], tuple[int, int] | None] = lambda: None,
    ) -> None:
        self._hub = hub
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)

        def stat(name: str) -> Callable[[], float]:
            def read() -> float:
                live = hub()
                return float(live.stats()[name]) if live is not None else 0.0

            return read

        for name, help_text in (
            ("calls", "Consultations with somebody connected"),
            ("participants", "Connected websockets in calls"),
            ("peers", "Server peer connections"),
            ("inlets", "Received tracks being read"),
        ):
            Gauge(f"consult_{name}", help_text, registry=self.registry).set_function(stat(name))
        Gauge(
            "consult_asyncio_tasks", "Tasks on the event loop", registry=self.registry
        ).set_function(lambda: float(len(asyncio.all_tasks())))

        def loop_cpu() -> float:
            live = hub()
            usage = live.admission.usage() if live is not None else None
            return usage if usage is not None else 0.0

        Gauge(
            "consult_loop_cpu_ratio",
            "The event loop thread's CPU over the last seconds, in cores (admission's headroom)",
            registry=self.registry,
        ).set_function(loop_cpu)

        def backup(read: Callable[[BackupStatus], float | None]) -> Callable[[], float]:
            def value() -> float:
                status = backups()
                got = read(status) if status is not None else None
                return float(got) if got is not None else 0.0

            return value

        for name, help_text, read in (
            (
                "consult_backup_last_success_timestamp_seconds",
                "When this node last made a scheduled backup (0: never)",
                lambda s: s.last_success_at.timestamp() if s.last_success_at else None,
            ),
            (
                "consult_backup_last_failure_timestamp_seconds",
                "When a scheduled backup of this node last failed (0: never)",
                lambda s: s.last_failure_at.timestamp() if s.last_failure_at else None,
            ),
            (
                "consult_backup_last_success_bytes",
                "Size of the last scheduled backup's archive",
                lambda s: s.last_success_bytes,
            ),
            (
                "consult_backup_running",
                "1 while a scheduled backup is being made",
                lambda s: s.running,
            ),
        ):
            Gauge(name, help_text, registry=self.registry).set_function(backup(read))
        self._errors = Counter(
            "consult_errors",
            "Errors reported to clients, by code, over HTTP or the websocket",
            ["code", "via"],
            registry=self.registry,
        )
        self._captures = Counter(
            "consult_captures",
            "Stills of captures, by source and outcome (saved or failed)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._capture_seconds = Histogram(
            "consult_capture_seconds",
            "Seconds from a capture's request to its still saved",
            ["source"],
            buckets=CAPTURE_BUCKETS,
            registry=self.registry,
        )
        self._media = _Media()
        self.registry.register(self._media)
        # Due work (issue 16): runs of reminders, check-ins... by kind and outcome.
        self._due_runs = Counter(
            "consult_due_work_runs",
            "Due work run by this node, by kind and outcome (done or failed: tried again later)",
            ["kind", "outcome"],
            registry=self.registry,
        )

        # Cross-node delivery (issue 13C): the links to and from the other nodes that are up.
        def links(index: int) -> Callable[[], float]:
            def value() -> float:
                up = bus()
                return float(up[index]) if up is not None else 0.0

            return value

        for index, name, help_text in (
            (0, "consult_bus_links_out", "Links to other nodes that are up"),
            (1, "consult_bus_links_in", "Links from other nodes that are up"),
        ):
            Gauge(name, help_text, registry=self.registry).set_function(links(index))

    def error(self, code: str, via: Literal["http", "ws"]) -> None:
        self._errors.labels(code, via).inc()

    def capture_saved(self, source: CaptureSource, seconds: float) -> None:
        self._captures.labels(source, "saved").inc()
        self._capture_seconds.labels(source).observe(max(seconds, 0.0))

    def capture_failed(self, source: CaptureSource) -> None:
        self._captures.labels(source, "failed").inc()

    def due_run(self, kind: str, outcome: Literal["done", "failed"]) -> None:
        self._due_runs.labels(kind, outcome).inc()

    def peer_closed(self, peer: ServerPeer) -> None:
        """Keep a closed peer's final counts in the totals."""
        if peer.final_stats is not None:
            self._media.retire(peer.role, peer.final_stats)

    async def render(self) -> bytes:
        """The exposition text, with every live peer's counts read now."""
        hub = self._hub()
        peers = [
            m.peer
            for call in (hub.calls() if hub is not None else ())
            for m in call.members()
            if m.peer is not None and m.peer.final_stats is None
        ]
        stats = await asyncio.gather(*(p.stats() for p in peers), return_exceptions=True)
        # A peer that closed meanwhile is in the closed totals already.
        self._media.live = [
            (p.role, s)
            for p, s in zip(peers, stats, strict=True)
            if isinstance(s, PeerStats) and p.final_stats is None
        ]
        return generate_latest(self.registry)


class _Media(Collector):
    def __init__(self) -> None:
        self._retired: dict[Role, PeerStats] = {"customer": PeerStats(), "stylist": PeerStats()}
        self.live: list[tuple[Role, PeerStats]] = []

    def retire(self, role: Role, stats: PeerStats) -> None:
        _merge(self._retired[role], stats)

    def collect(self) -> Iterable[Metric]:
        totals = {role: _merge(PeerStats(), retired) for role, retired in self._retired.items()}
        for role, stats in self.live:
            _merge(totals[role], stats)
        counts = CounterMetricFamily(
            "consult_media_bytes",
            "Bytes over participants' connections; in: participant to server, out: server to"
            " participant",
            labels=["role", "direction"],
        )
        packets = CounterMetricFamily(
            "consult_media_packets", "RTP packets", labels=["role", "direction", "kind"]
        )
        lost = CounterMetricFamily(
            "consult_media_packets_lost",
            "RTP packets lost; in: seen missing by the server, out: reported by the participant",
            labels=["role", "direction", "kind"],
        )
        frames = CounterMetricFamily(
            "consult_media_frames_received",
            "Video frames (and audio packets) received from participants",
            labels=["role", "kind"],
        )
        for role, t in totals.items():
            counts.add_metric([role, "in"], t.bytes_in)
            counts.add_metric([role, "out"], t.bytes_out)
            for kind in ("audio", "video"):
                packets.add_metric([role, "in", kind], t.packets_in.get(kind, 0))
                packets.add_metric([role, "out", kind], t.packets_out.get(kind, 0))
                lost.add_metric([role, "in", kind], t.lost_in.get(kind, 0))
                lost.add_metric([role, "out", kind], t.lost_out.get(kind, 0))
                frames.add_metric([role, kind], t.frames_in.get(kind, 0))
        rtt = GaugeMetricFamily(
            "consult_media_round_trip_seconds",
            "Round-trip time between the server and participants (worst live connection)",
            labels=["role"],
        )
        for role in ("customer", "stylist"):
            times = [s.round_trip for r, s in self.live if r == role and s.round_trip is not None]
            if times:
                rtt.add_metric([role], max(times))
        yield from (counts, packets, lost, frames, rtt)


def _merge(into: PeerStats, other: PeerStats) -> PeerStats:
    into.bytes_in += other.bytes_in
    into.bytes_out += other.bytes_out
    for mine, theirs in (
        (into.packets_in, other.packets_in),
        (into.packets_out, other.packets_out),
        (into.lost_in, other.lost_in),
        (into.lost_out, other.lost_out),
        (into.frames_in, other.frames_in),
    ):
        for kind, value in theirs.items():
            mine[kind] = mine.get(kind, 0) + value
    return into
