from __future__ import annotations

import pytest

from data_prep.text import normalize_text, number_to_words, ordinal_to_words


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty-two"), (100, "one hundred"),
    (118, "one hundred eighteen"), (2000, "two thousand"), (1_000_001, "one million one"),
    (-5, "minus five"), (999_999, "nine hundred ninety-nine thousand nine hundred ninety-nine"),
])
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"),
                                      (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth")])
def test_ordinals(n, words):
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith met Mr. Jones.", "Doctor Smith met Mister Jones."),
    ("It cost $3.50.", "It cost three dollars fifty cents."),
    ("Only $1 left", "Only one dollar left"),
    ("In 1999 and 2005", "In nineteen ninety-nine and two thousand five"),
    ("2,345 people", "two thousand three hundred forty-five people"),
    ("pi is 3.14", "pi is three point one four"),
    ("the 21st day", "the twenty-first day"),
    ("20% off", "twenty percent off"),
    ("\u201cquoted\u201d  it\u2019s", "\"quoted\" it's"),
    ("  lots \n of\tspace ", "lots of space"),
])
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_normalized_text_has_no_digits():
    assert not any(c.isdigit() for c in normalize_text("On 3/4 at 10:30 we had 7 cats, 1.5 dogs and 1,000,000 fish"))
