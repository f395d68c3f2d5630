"""Session accounting: records, store, exports (XDMoD, APEL, JSON), spool and CLI."""
