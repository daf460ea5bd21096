"""What comes back: the bounce and complaint policy (``feedback``), the inbound
mailbox (``listener``, ``inbound``), DSN/ARF and plain-text bounce parsing, and the
mail providers' incoming events (``providers``)."""
