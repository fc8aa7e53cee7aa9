"""The mock issuer: signing keys per issuing unit, minting presentation tokens, the five apps and its
HTTP service. The verifier side never imports it."""
