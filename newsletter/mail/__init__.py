"""Mail as bytes and on the wire: MIME, templates and their sandbox, the SMTP relay
and its trust, the outbox, return paths and mailto links, digest and transactional
messages. Reaches up into nothing but ``core`` and the bottom."""
