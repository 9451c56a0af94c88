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


# How a person reads each input aloud. Written before the normaliser was fixed; one block per
# kind of input. The output keeps the sentence's punctuation: '.', '!', '?' end sentences; '—'
# (dash) and '…' (ellipsis) are the pause tokens of the symbol table.
CASES = [
    # --- abbreviations; a sentence-final one keeps its full stop
    ("Dr. Smith met Mr. Jones.", "Doctor Smith met Mister Jones."),
    ("Mrs. Abbott and Prof. Lee left.", "Missus Abbott and Professor Lee left."),
    ("We bought apples, pears, etc.", "We bought apples, pears, et cetera."),
    ("Bring pens, paper, etc. and a lamp.", "Bring pens, paper, et cetera and a lamp."),
    ("He lives on Main St. Then he moved.", "He lives on Main Street. Then he moved."),
    ("She prayed at St. Paul's.", "She prayed at Saint Paul's."),
    ("Martin Luther King Jr. spoke.", "Martin Luther King Junior spoke."),
    ("He works for Acme Co.", "He works for Acme Company."),
    ("They climbed Mt. Everest.", "They climbed Mount Everest."),
    ("It was Smith vs. Jones.", "It was Smith versus Jones."),
    ("Ask the Dr.", "Ask the Doctor."),
    ("Fruit, e.g. apples, is good.", "Fruit, for example apples, is good."),
    # --- "no." is "number" only before a number
    ("He said no.", "He said no."),
    ("He said no. Then he left.", "He said no. Then he left."),
    ("Room No. 5 is free.", "Room number five is free."),
    ("Take the no. 7 bus.", "Take the number seven bus."),
    ("No, thank you.", "No, thank you."),
    ("Ticket #3 won.", "Ticket number three won."),
    # --- cardinal numbers vs years, by context
    ("2000 sheep grazed.", "two thousand sheep grazed."),
    ("We counted 1850 people.", "We counted one thousand eight hundred fifty people."),
    ("In 1999 it rained.", "In nineteen ninety-nine it rained."),
    ("In 2005 and 1887", "In two thousand five and eighteen eighty-seven"),
    ("It has been broken since 1952.", "It has been broken since nineteen fifty-two."),
    ("The war lasted from 1939 to 1945.", "The war lasted from nineteen thirty-nine to nineteen forty-five."),
    ("It was built in 1900.", "It was built in nineteen hundred."),
    ("He was born in 2010.", "He was born in twenty ten."),
    ("They met in 1905.", "They met in nineteen oh five."),
    ("The year 1066 was eventful.", "The year ten sixty-six was eventful."),
    ("It happened on May 2nd, 1999.", "It happened on May second, nineteen ninety-nine."),
    ("It opened in March 1887.", "It opened in March eighteen eighty-seven."),
    ("Music of the 1960s", "Music of the nineteen sixties"),
    ("The road is 1200 miles long.", "The road is one thousand two hundred miles long."),
    ("2,345 people", "two thousand three hundred forty-five people"),
    ("1,000,000 fish", "one million fish"),
    ("The 1939-1945 war", "The nineteen thirty-nine to nineteen forty-five war"),
    # --- units
    ("He is 6 ft. tall.", "He is six feet tall."),
    ("The wall is 6 ft.", "The wall is six feet."),
    ("A 1 ft ruler", "A one foot ruler"),
    ("We walked 5 km today.", "We walked five kilometers today."),
    ("It weighs 3 kg.", "It weighs three kilograms."),
    ("A 12 lb turkey and 1 lb of butter", "A twelve pound turkey and one pound of butter"),
    ("He drove at 60 mph.", "He drove at sixty miles per hour."),
    ("The limit is 30 km/h.", "The limit is thirty kilometers per hour."),
    ("It was 20°C outside.", "It was twenty degrees Celsius outside."),
    ("Add 250 ml of milk.", "Add two hundred fifty milliliters of milk."),
    ("It lasted 2 hrs and 10 min.", "It lasted two hours and ten minutes."),
    ("Use 3 oz of flour.", "Use three ounces of flour."),
    ("The room is 4 m wide.", "The room is four meters wide."),
    ("It is 10 cm long.", "It is ten centimeters long."),
    # --- times
    ("We met at 10:30.", "We met at ten thirty."),
    ("The bus leaves at 7:05.", "The bus leaves at seven oh five."),
    ("Dinner is at 9:00.", "Dinner is at nine o'clock."),
    ("It starts at 10:30 a.m. sharp.", "It starts at ten thirty AM sharp."),
    ("Call me at 5pm.", "Call me at five PM."),
    ("The train left at 14:45.", "The train left at fourteen forty-five."),
    ("See you at 9 p.m.", "See you at nine PM."),
    # --- negative numbers
    ("It was -5 degrees.", "It was minus five degrees."),
    ("The value is \u22123.", "The value is minus three."),
    ("A drop of -2.5 points", "A drop of minus two point five points"),
    ("It fell to -10°C.", "It fell to minus ten degrees Celsius."),
    ("Read pages 5-10.", "Read pages five to ten."),
    ("A 5-year-old girl", "A five-year-old girl"),
    ("A well-known tale", "A well-known tale"),
    # --- decimals
    ("pi is 3.14", "pi is three point one four"),
    ("Add 0.5 cups.", "Add zero point five cups."),
    ("It grew by .5 inches.", "It grew by point five inches."),
    ("1,234.56 units", "one thousand two hundred thirty-four point five six units"),
    ("Version 2.0 is out.", "Version two point zero is out."),
    ("2.5% more", "two point five percent more"),
    # --- ordinals
    ("the 21st day", "the twenty-first day"),
    ("the 3rd of March", "the third of March"),
    ("He came 103rd.", "He came one hundred third."),
    ("the 11th hour", "the eleventh hour"),
    ("the 2nd and 22nd", "the second and twenty-second"),
    # --- currencies
    ("It cost $3.50.", "It cost three dollars and fifty cents."),
    ("Only $1 left", "Only one dollar left"),
    ("A £5 note", "A five pound note"),
    ("It cost £3.20.", "It cost three pounds and twenty pence."),
    ("It cost €20.", "It cost twenty euros."),
    ("Just $0.99!", "Just ninety-nine cents!"),
    ("It raised $1.5 million.", "It raised one point five million dollars."),
    ("It cost $2,000.", "It cost two thousand dollars."),
    ("It cost $5.00.", "It cost five dollars."),
    ("It cost ¥100.", "It cost one hundred yen."),
    ("20% off", "twenty percent off"),
    # --- dashes and ellipses are pauses
    ("Wait - what?", "Wait — what?"),
    ("Wait\u2014what?", "Wait — what?"),
    ("Yes -- no.", "Yes — no."),
    ("Yes \u2013 no.", "Yes — no."),
    ("He paused... then left.", "He paused… then left."),
    ("He paused . . . then left.", "He paused… then left."),
    ("Well\u2026", "Well…"),
    ("Wait\u2026what?", "Wait… what?"),
    ("From 1990\u20132000", "From nineteen ninety to two thousand"),
    ("It was built between 1990 and 2000.", "It was built between nineteen ninety and two thousand."),
    ("In 1999, 2000 people came.", "In nineteen ninety-nine, two thousand people came."),
    # --- fractions, initialisms (added with the fix)
    ("Add 1/2 cup and 3/4 of it.", "Add one half cup and three quarters of it."),
    ("The U.S. army", "The U S army"),
    ("He moved to the U.S.", "He moved to the U S."),
    # --- quotes, spaces, symbols
    ("\u201cquoted\u201d  it\u2019s", "\"quoted\" it's"),
    ("  lots \n of\tspace ", "lots of space"),
    ("salt & pepper", "salt and pepper"),
]


def test_table_is_big_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("text, expected", CASES)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text", [t for t, _ in CASES])
def test_normalize_is_idempotent(text):
    # the phonemes stage normalises LibriTTS's (already normalised) text_norm again: that must not change it
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_normalized_text_has_no_digits():
    assert not any(c.isdigit() for c in normalize_text("On 3/4 at 10:30 we had 7 cats, 1.5 dogs and 1,000,000 fish"))


def test_output_uses_only_what_inference_produces():
    # LibriTTS's text_norm carries curly quotes and dashes; after normalisation, only the straight forms
    # and the pause tokens remain, the same symbols inference input gets
    out = normalize_text("\u2018Oh!\u2019 she cried \u2014 \u201cno\u201d\u2026 \u00abyes\u00bb")
    assert not set(out) & set("\u2018\u2019\u201c\u201d\u00ab\u00bb\u2013")
    assert "—" in out and "…" in out
