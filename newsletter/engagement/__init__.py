"""Engagement: did anyone open a digest, and which links did people follow?

A newsletter tracked ``counts`` or ``per-subscriber`` gets its digests' links pointed at
``/r/<token>`` and a pixel at ``/o/<token>`` (mail/digest.py); each request on them is one
event row, classified as a person's or a machine's (rules.py), then counted (figures.py).
What each mode keeps, and for how long, is in docs/engagement.md.
"""
