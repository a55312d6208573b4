"""Every change of a delivery's status, in one place: claim, defer, renew, succeed, fail,
take back, re-send, requeue, resolve.

The task (events.delivery), the lease keeper (events.leases) and the sweeper (events.recovery)
change deliveries only through these functions. Each takes the event's row lock and then updates
the delivery conditionally; the loser of any race changes nothing. ``total_attempts`` is a
fencing token: a worker whose attempt was taken over (its lease lapsed, or its process is known
dead) cannot overwrite the newer attempt's result.

A running delivery holds a short lease (``SWITCHYARD_LEASE_SECONDS``) that its worker renews
while the handler runs; the time limit is enforced on its own (events.leases). A delivery whose
worker died is taken over within about one lease plus one sweep interval, whatever its time
limit, and at once when its message comes back to a worker that can see the holder is gone.
"""

from .claiming import Claim, Outcome, claim, holder_lost, renew
from .deferral import Hold, Waiting, defer, gate
from .outcomes import MAX_TRACEBACK, error_class_name, fail, storable, succeed
from .policy import CLAIM_SKEW, RouteSettings, backoff_delay, route_settings
from .redelivery import RESEND_WARN_AFTER, requeue, resend, resolve, take_back

__all__ = [
    "CLAIM_SKEW",
    "MAX_TRACEBACK",
    "RESEND_WARN_AFTER",
    "Claim",
    "Hold",
    "Outcome",
    "RouteSettings",
    "Waiting",
    "backoff_delay",
    "claim",
    "defer",
    "error_class_name",
    "fail",
    "gate",
    "holder_lost",
    "renew",
    "requeue",
    "resend",
    "resolve",
    "route_settings",
    "storable",
    "succeed",
    "take_back",
]
