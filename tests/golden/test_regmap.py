"""Bus words of golden/contract/regmap.py: how a signed raw value travels in a 32-bit word."""

from dpfm.golden.contract import regmap


def test_signed_values_round_trip_through_bus_words():
    top = (1 << (regmap.DATA_BITS - 1)) - 1
    for value in (0, 1, -1, 32767, -32767, top, -top - 1):
        word = regmap.to_word(value)
        assert 0 <= word < 1 << regmap.DATA_BITS
        assert regmap.from_word(word) == value
    assert regmap.to_word(-1) == 0xFFFFFFFF and regmap.from_word(0x80000000) == -(1 << 31)


def test_words_of_an_array_equal_the_words_of_its_elements():
    """The device converts whole weight and output vectors at once: elementwise, the same words."""
    import numpy as np
    values = np.array([0, 1, -1, 32767, -32767, (1 << 31) - 1, -(1 << 31)], dtype=np.int64)
    words = regmap.to_word(values)
    assert words.tolist() == [regmap.to_word(int(v)) for v in values]
    assert regmap.from_word(words).tolist() == values.tolist()
