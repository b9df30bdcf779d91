"""The UART PHY's model `golden.uart`: the 8N1 character of a byte."""

from dpfm.golden.uart import FRAME_BITS, frame_bits, frame_byte


def test_character_is_start_data_lsb_first_stop():
    assert frame_bits(0x01) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert frame_bits(0xC0) == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert frame_bits(0xA5, stop=0)[-1] == 0
    assert all(len(frame_bits(b)) == FRAME_BITS for b in (0, 0xFF))


def test_frame_byte_inverts_frame_bits_and_refuses_bad_start_or_stop():
    assert [frame_byte(frame_bits(b)) for b in range(256)] == list(range(256))
    assert frame_byte(frame_bits(0x3C, stop=0)) is None
    assert frame_byte([1] + frame_bits(0x3C)[1:]) is None
    assert frame_byte(frame_bits(0x3C)[:-1]) is None
