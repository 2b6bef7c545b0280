"""The live side of a call: the session that runs its pipeline, persistence, providers."""
