"""What mail providers tell us, by webhook, of the mail they carried for us: bounces,
complaints, unsubscribes and deliveries.

Each provider's module takes one request as it came: it proves that the provider sent
it, and sent it now (a signature and its timestamp, or a password), reads its events
and hands each to ``feedback``, which finds the subscriber and applies the policy.
``events`` holds what they share: the refusals, the replay guard, the batch.
"""

from collections.abc import Mapping
from typing import Any

from newsletter.bounces.providers import postmark, sendgrid


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse to start with a webhook setting that could never work, rather than find
    out from a provider's failed posts."""
    sendgrid.check_config(config)
    postmark.check_config(config)
