"""The scan service and its ports: what it needs from outside (a state store, a trust source) as
protocols, and its settings."""
