"""`python -m bench.sockets` still measures: a bare app on each server reads paced media frames."""

import pytest

from bench import sockets
from callcenter.serve import SERVERS


@pytest.mark.bench
@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", SERVERS)
def test_each_server_reads_the_streams_and_the_bench_reports_its_cpu(server):
    row = sockets.measure(server, streams=3, seconds=0.5, pin=False)
    assert row["server"] == server and row["streams"] == 3
    # 3 streams x (3 s warm-up + 0.5 s), every 20 ms; all accepted by the server (no exception).
    assert 3 * 174 <= row["frames_sent"] <= 3 * 176
    assert row["cpu_percent"] >= 0 and row["us_per_frame"] >= 0  # too short to time reliably
