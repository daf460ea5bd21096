"""Helpers every layer may use: signed tokens and links, addresses, languages,
Markdown, counters, the admins' settings row and the suppression list. Imports only
``models``, ``extensions`` and ``secret_box`` from the package."""
