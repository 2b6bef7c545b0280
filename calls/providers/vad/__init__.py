"""Voice activity detection: per-frame speech decisions and a start/stop speech detector."""
