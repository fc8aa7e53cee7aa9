"""The ``verifier`` command: one module per command group."""
