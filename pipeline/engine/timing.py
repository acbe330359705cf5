"""Every duration the engine waits on, scaled once.

The one time-scale rule: settings and engine constants are given in real seconds, and
`Timing.of(settings, scale)` multiplies each of them by the scale, here and nowhere else.
A run against Kie uses scale 1; a time-compressed simulator run may pass its scale as a hint,
but nothing needs it to perform well: the poll plan learns each model's timing from its
answers, and the durations that pace the run's own work (progress and output writes, the
callback fallback, which follows the learned plan) are wall-clock and left unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.manifest import Rate, Settings

BACKOFF_BASE = 1.0  # first retry of a failed call, doubling up to BACKOFF_CAP
BACKOFF_CAP = 60.0
MAINTENANCE_BASE = 10.0  # 455: maintenance can last long; wait it out, doubling
MAINTENANCE_CAP = 300.0
PROGRESS_FLUSH = 2.0  # between batched writes of poll progress (wall-clock: it paces the disk)
CALLBACK_FALLBACK = 120.0  # most a fallback poll comes after the planned one (see tracker)
OUTPUTS_EVERY = 2.0  # between rewrites of the ledger and gallery during a run
URL_FRESH_FOR = 600.0  # an upstream's result URL is sent as is while younger (engine.inputs)
OUTAGE_GIVE_UP = 600.0  # seconds of unreachable Kie before the run stops (engine.outage)
# A new task can be "not found" for a while after its create (Kie's records lag): a task
# unknown since its create is given up only this long after it (engine.tracker).
UNKNOWN_GRACE = 90.0


@dataclass(frozen=True)
class Timing:
    scale: float
    create_rate: Rate
    query_rate: Rate
    poll_interval: float
    poll_max_interval: float
    max_wait: float
    backoff_base: float
    backoff_cap: float
    maintenance_base: float
    maintenance_cap: float
    progress_flush: float
    callback_fallback: float
    outputs_every: float
    upload_max_age: float
    url_fresh_for: float
    outage_give_up: float
    unknown_grace: float

    @classmethod
    def of(cls, settings: Settings, scale: float = 1.0) -> Timing:
        def rate(r: Rate) -> Rate:
            return Rate(r.count, r.seconds * scale)

        return cls(
            scale=scale,
            create_rate=rate(settings.create_rate),
            query_rate=rate(settings.query_rate),
            poll_interval=settings.poll_interval * scale,
            poll_max_interval=max(settings.poll_interval, settings.poll_max_interval) * scale,
            max_wait=settings.max_wait * scale,
            backoff_base=BACKOFF_BASE * scale,
            backoff_cap=BACKOFF_CAP * scale,
            maintenance_base=MAINTENANCE_BASE * scale,
            maintenance_cap=MAINTENANCE_CAP * scale,
            progress_flush=PROGRESS_FLUSH,  # wall-clock, like outputs_every
            callback_fallback=CALLBACK_FALLBACK,  # a cap; the fallback follows the poll plan
            outputs_every=OUTPUTS_EVERY,  # wall-clock: it paces disk writes, not Kie
            upload_max_age=settings.upload_max_age * scale,
            url_fresh_for=URL_FRESH_FOR * scale,
            outage_give_up=OUTAGE_GIVE_UP * scale,
            unknown_grace=UNKNOWN_GRACE * scale,
        )
