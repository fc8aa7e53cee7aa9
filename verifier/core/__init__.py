"""The pure core: tokens, the trust list, the catalogue model, the decision and its reasons, and the
documents made of them. No I/O and no clock: ``now`` is an argument."""
