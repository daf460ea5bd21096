"""The admins: accounts, roles, two-factor, API keys, the audit log, log-ins, the
dashboard's figures and the deliverability checks."""
