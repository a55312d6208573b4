"""The pipeline's models, by concern: where events come from (sources), where they go
(routes), what happens to them (pipeline), the schedules that publish them, the requests that
were refused (requests), the once-a-minute samples the dashboard draws (samples), and
handlers' memory across events (state).

Delivery states: pending -> running -> succeeded | retrying -> ... | dead_lettered | skipped.
An event's status is derived from its deliveries (see events.status).
"""

from .limits import BreakerMode, Resource
from .pipeline import (
    Attempt,
    AttemptStatus,
    DeadLetter,
    Delivery,
    DeliveryQuerySet,
    DeliveryStatus,
    Event,
    EventStatus,
    Requeue,
)
from .replays import Replay, ReplayStatus
from .requests import RejectedRequest
from .routes import Route
from .samples import PipelineSample
from .schedules import OverlapPolicy, Schedule, SchedulePolicy, ScheduleTick, TickStatus
from .sources import ApiToken, Source
from .state import HandlerState

__all__ = [
    "ApiToken",
    "Attempt",
    "AttemptStatus",
    "BreakerMode",
    "DeadLetter",
    "Delivery",
    "DeliveryQuerySet",
    "DeliveryStatus",
    "Event",
    "EventStatus",
    "HandlerState",
    "OverlapPolicy",
    "PipelineSample",
    "RejectedRequest",
    "Replay",
    "ReplayStatus",
    "Requeue",
    "Resource",
    "Route",
    "Schedule",
    "SchedulePolicy",
    "ScheduleTick",
    "Source",
    "TickStatus",
]
