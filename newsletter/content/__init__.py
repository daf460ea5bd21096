"""What is sent: posts and the feed, newsletters and their members, the composer,
digests and their schedules, the archive, the admins' email templates, and the
digest send path (``digest_deliveries``) built on ``sending``."""
