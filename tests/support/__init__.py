"""What the tests share (import from here, never from another test module): waiting for a
condition (`wait`), a settable clock (`clock`), the processor harness and the fake phone as a
pipeline's transport (`pipeline`), the fake phone on the in-process Media Streams socket
(`stream`), the small app the sandbox carrier calls (`sandbox_app`), the server in a subprocess
(`liveserver`)."""
