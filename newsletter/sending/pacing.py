"""The admins' limit on how fast digests go out, kept by every worker on every host.

The settings row holds a clock: the moment (Unix time) up to which sending is
already booked. Before a worker takes a batch it books the time that batch needs
at the limit with one conditional UPDATE … RETURNING, then gives each message
a slot of 1/limit seconds inside that time. Bookings never overlap and slots
never overlap, so all workers together stay under the limit in every second,
not only on average. A message that is late (a slow connection, a busy host)
pushes the rest of its batch later instead of sending them closer together;
what no longer fits in the booking goes back for another batch. A worker may
book at most ``AHEAD_SECONDS`` ahead; when the clock is further on, it holds no
lease and simply tries again later. Hosts' clocks are assumed to agree (NTP),
as they must for the leases anyway.
"""

import time
from dataclasses import dataclass

from sqlalchemy import case, select, update

from newsletter.core.models import Settings
from newsletter.extensions import db

AHEAD_SECONDS = 5.0
# Under a limit a batch lasts about this long, so nobody books far ahead.
BATCH_SECONDS = 1.0
RETRY_SECONDS = 1.0
# A booking starts at least this far ahead: time to claim the batch and connect.
LEAD_SECONDS = 0.05
# Float rounding must not cost a batch its last slot.
SLACK_SECONDS = 1e-6


@dataclass
class Booking:
    size: int
    start: float
    interval: float = 0.0

    def __post_init__(self) -> None:
        self.end = self.start + self.size * self.interval
        self._next_slot = self.start

    @classmethod
    def unlimited(cls, size: int) -> "Booking":
        return cls(size, time.time())

    @property
    def paced(self) -> bool:
        return bool(self.interval)

    def take_turn(self) -> bool:
        """Wait for the next free slot and take it; False when no slot is left."""
        if not self.interval:
            return True
        now = time.time()
        slot = max(self._next_slot, now)
        if slot + self.interval > self.end + SLACK_SECONDS:
            return False
        if slot > now:
            time.sleep(slot - now)
        self._next_slot = slot + self.interval
        return True


def book(batch_size: int) -> Booking | None:
    """Time for the next batch: a Booking, or None when sending is booked too far ahead."""
    limit = db.session.scalar(select(Settings.send_rate_limit).order_by(Settings.id).limit(1))
    if not limit:
        return Booking.unlimited(batch_size)
    size = max(1, min(batch_size, int(limit * BATCH_SECONDS)))
    duration = size / limit
    now = time.time()
    earliest = now + LEAD_SECONDS
    clock = Settings.send_clock
    booked_until = db.session.scalar(
        update(Settings)
        .where(Settings.send_rate_limit > 0, clock < now + AHEAD_SECONDS)
        .values(send_clock=case((clock > earliest, clock), else_=earliest) + duration)
        .returning(Settings.send_clock)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if booked_until is None:
        return None
    return Booking(size, booked_until - duration, 1 / limit)
