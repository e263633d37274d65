"""Learning that the host changed, cheaply: nf_tables notifications, the engine's events, fingerprints."""
