"""Outgoing webhooks: the events we post to the admins' endpoints (``outgoing``) and
the guarded HTTP client that posts them (``outgoing_http``). Incoming provider
events are ``bounces.providers``."""
