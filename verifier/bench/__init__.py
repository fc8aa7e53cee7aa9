"""``verifier bench``: the scan path against the ceilings of its parts. Never installs anything."""
