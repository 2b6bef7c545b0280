"""SendBuffer alone: order, holding, the cap, joining, and replay after a lost socket."""

from __future__ import annotations

from calls.providers.stt.send_buffer import SendBuffer


def buffer(**kw) -> SendBuffer:
    sizes = {"buffer_bytes": 1000, "replay_bytes": 1000, "chunk_bytes": 400, "join_max_bytes": 250}
    return SendBuffer(**{**sizes, **kw})


def frame(n: int, size: int = 100) -> bytes:
    return bytes([n]) * size


def drain(buf: SendBuffer) -> list[bytes | str]:
    out = []
    while (item := buf.pop()) is not None:
        out.append(item)
    return out


def test_audio_and_controls_go_out_in_order_one_piece_each_when_the_sender_keeps_up():
    buf = buffer()
    assert not buf and buf.pop() is None
    assert buf.add(frame(1))
    assert buf and buf.pending_bytes == 100
    assert buf.pop() == frame(1) and buf.pending_bytes == 0
    buf.add(frame(2))
    buf.control("Finalize")
    buf.add(frame(3))
    assert drain(buf) == [frame(2), "Finalize", frame(3)]
    assert buf.total == 300  # the audio clock


def test_non_urgent_audio_is_held_until_a_chunk_or_urgent_audio_sends_it():
    buf = buffer()
    for n in range(3):
        assert not buf.add(frame(n), urgent=False)  # 300 of 400 bytes: held
    assert not buf and buf.total == 0
    assert buf.add(frame(3), urgent=False)  # a whole chunk
    assert drain(buf) == [frame(0) + frame(1) + frame(2) + frame(3)]

    buf.add(frame(4), urgent=False)
    assert buf.add(frame(5))  # urgent: the held audio goes with it, first
    assert drain(buf) == [frame(4) + frame(5)]

    buf.add(frame(6), urgent=False)
    assert buf.flush_held() and not buf.flush_held()
    assert drain(buf) == [frame(6)] and buf.total == 700


def test_past_the_cap_the_oldest_audio_is_dropped_and_controls_are_kept():
    buf = buffer(buffer_bytes=300, join_max_bytes=100)
    buf.add(frame(1))
    buf.control("KeepAlive")
    for n in (2, 3, 4):
        buf.add(frame(n))
    assert buf.dropped_bytes == 100 and buf.pending_bytes == 300
    assert drain(buf) == ["KeepAlive", frame(2), frame(3), frame(4)]
    assert buf.total == 400  # dropped audio still moved the clock


def test_audio_queued_behind_a_slow_sender_goes_out_joined_up_to_the_limit():
    buf = buffer(join_max_bytes=250)
    for n in range(4):
        buf.add(frame(n))
    buf.control("Finalize")
    buf.add(frame(4))
    # 100 + 100 + 100 reaches 250: the fourth piece starts the next message
    assert drain(buf) == [frame(0) + frame(1) + frame(2), frame(3), "Finalize", frame(4)]
    assert buf.pending_bytes == 0


def test_a_new_socket_replays_what_no_final_covers_and_skips_it_in_pending():
    buf = buffer(join_max_bytes=100)
    for n in range(3):
        buf.add(frame(n))
    assert buf.pop() == frame(0)  # sent on the first socket
    buf.confirm(100)  # a final covered frame 0
    # the socket drops with frames 1 and 2 unconfirmed (frame 2 not even sent yet)
    base, replay = buf.replay()
    assert (base, replay) == (100, [frame(1), frame(2)])
    buf.add(frame(3))
    assert drain(buf) == [frame(3)]  # frame 2 went out in the replay
    buf.confirm(400)
    assert buf.replay() == (400, [])


def test_the_replay_ring_is_bounded_but_keeps_the_newest_piece():
    buf = buffer(replay_bytes=250, buffer_bytes=10_000)
    for n in range(5):
        buf.add(frame(n))
    assert buf.replay() == (300, [frame(3), frame(4)])
    big = buffer(replay_bytes=50)
    big.add(frame(9))
    assert big.replay() == (0, [frame(9)])


def test_a_control_that_failed_to_go_out_is_sent_next():
    buf = buffer()
    buf.add(frame(1))
    assert buf.pop() == frame(1)
    buf.add(frame(2))
    buf.retry_control("Finalize")
    assert drain(buf) == ["Finalize", frame(2)]
