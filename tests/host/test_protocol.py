"""golden/contract/wire.py: CRC, SLIP and the host's frame reader under arbitrary input (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dpfm.golden.contract import wire as P


def test_crc_check_value_and_zero_residue():
    assert P.crc16(b"123456789") == 0x29B1        # CRC-16/CCITT-FALSE catalogue check value
    frame = P.pack_frame(3, P.OP_PING)
    assert P.crc16(frame) == 0                     # what the gateware tests at the end of a frame


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_slip_roundtrip_of_frames(frames):
    wire = b"".join(P.slip_encode(f) for f in frames)
    assert P.FrameReader().feed(wire) == [(f, True) for f in frames if f]


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=10))
def test_reader_independent_of_chunking(wire, cuts):
    whole = P.FrameReader().feed(wire)
    reader, got, pos = P.FrameReader(), [], 0
    for cut in cuts:
        got += reader.feed(wire[pos:pos + cut])
        pos += cut
    got += reader.feed(wire[pos:])
    assert got == whole


@given(st.binary(max_size=200), st.binary(min_size=1, max_size=40).filter(lambda b: P.END not in b))
@settings(max_examples=200)
def test_garbage_costs_at_most_the_frame_it_hits(garbage, body):
    """After any garbage, a frame that starts with END is decoded intact (resynchronization)."""
    frames = P.FrameReader().feed(garbage + P.slip_encode(body))
    assert frames[-1] == (body, True)


@given(st.integers(0, 8 * 19 - 1), st.integers(0, 8 * 19 - 1))
def test_any_one_or_two_bit_error_is_detected(bit_a, bit_b):
    """CRC-16/CCITT detects every 1- and 2-bit error in a frame this short."""
    frame = bytearray(P.pack_frame(1, P.OP_WRITE, P.write_payload(0x4000, [1, 2, 3])))
    assert len(frame) == 19
    for bit in {bit_a, bit_b}:
        frame[bit // 8] ^= 1 << (bit % 8)
    assert P.unpack_frame(bytes(frame)) is None


def test_unpack_rejects_short_and_bad_crc():
    assert P.unpack_frame(b"\x01\x02\x03") is None
    frame = bytearray(P.pack_frame(5, P.ST_OK, b"abc"))
    assert P.unpack_frame(bytes(frame)) == (5, P.ST_OK, b"abc")
    frame[2] ^= 1
    assert P.unpack_frame(bytes(frame)) is None


def test_reader_bounds_an_endless_frame():
    reader = P.FrameReader(max_bytes=10)
    assert reader.feed(bytes(100) + bytes([P.END])) == [(bytes(10), False)]


def test_model_answers_retried_write_once():
    model = P.DeviceModel(status_addr=5)
    write = P.encode_frame(4, P.OP_WRITE, P.write_payload(0x4000, [1]))
    retry = P.encode_frame(4, P.OP_WRITE, P.write_payload(0x4000, [2]))
    replies = model.feed(write + retry)
    assert [P.unpack_frame(r)[1] for r in replies] == [P.ST_OK, P.ST_DUPLICATE]
    assert model.memory == {0x4000: 1}


def test_model_replies_on_wire_end_each_reply_with_end_only():
    """The device's wire form of a reply: escaped, END after it and not before (the gateware's encoder)."""
    model = P.DeviceModel(status_addr=5)
    wire = P.encode_frame(1, P.OP_PING) + P.encode_frame(2, P.OP_READ, P.read_payload(0, 1))
    replies = P.DeviceModel(status_addr=5).feed(wire)
    sent = model.replies_on_wire(wire)
    assert len(replies) == 2 and sent[0] != P.END and sent.endswith(bytes([P.END]))
    assert sent == b"".join(P.slip_encode(r)[1:] for r in replies)
    assert P.FrameReader().feed(sent) == [(r, True) for r in replies]
