"""End-to-end tests: the real server process, the sandbox carrier and the local speech engines."""
