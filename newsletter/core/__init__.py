"""Helpers every layer may use: signed tokens and links, addresses, languages,
Markdown, counters, counted writes, the admins' settings row and the suppression
list. Imports only ``models``, ``extensions`` and ``secret_box`` from the package."""
