"""The one send engine (claim, build, send, classify, record) with its leases, pacing
and the broker hints that wake the workers; transactional email jobs. Imports only
``mail``, ``core`` and the bottom (models, extensions)."""
