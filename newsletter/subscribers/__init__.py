"""The people on the list: sign-up, confirmation, consent, preferences, privacy
(a copy of their data, erasure), the admin's subscriber pages and imports, blocked
domains and the sign-up captcha."""
