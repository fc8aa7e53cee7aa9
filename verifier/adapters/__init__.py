"""What the ports are made of: the memory and Redis stores (one Redis, Sentinel, Cluster), the JWKS
trust source, the catalogue files, the API keys, and where data and state live."""
