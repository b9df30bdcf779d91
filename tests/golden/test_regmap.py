"""Bus words of golden/contract/regmap.py: how a signed raw value travels in a 32-bit word."""

from dpfm.golden.contract import regmap


def test_signed_values_round_trip_through_bus_words():
    top = (1 << (regmap.DATA_BITS - 1)) - 1
    for value in (0, 1, -1, 32767, -32767, top, -top - 1):
        word = regmap.to_word(value)
        assert 0 <= word < 1 << regmap.DATA_BITS
        assert regmap.from_word(word) == value
    assert regmap.to_word(-1) == 0xFFFFFFFF and regmap.from_word(0x80000000) == -(1 << 31)
