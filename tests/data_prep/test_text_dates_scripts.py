"""normalize_text reads dates with slashes (version 3 on, older versions reproduced); unpronounceable
names what an English voice cannot read."""
import pytest

from data_prep.frontend import TextFrontend
from data_prep.text import NORMALIZER_VERSION, normalize_text, unpronounceable


@pytest.mark.parametrize("text,expect", [
    ("on 12/05/2024 at 10:30.", "on December fifth, twenty twenty-four at ten thirty."),
    ("25/12/2024", "December twenty-fifth, twenty twenty-four"),
    ("born 3/4/1999", "born March fourth, nineteen ninety-nine"),
    ("13/13/2024", "thirteen/thirteen/two thousand twenty-four"),      # no month: left as numbers
    ("add 1/2 cup", "add one half cup"),                               # fractions unchanged
])
def test_dates_with_slashes(text, expect):
    assert normalize_text(text) == expect
    assert normalize_text(normalize_text(text)) == normalize_text(text)


def test_an_older_normaliser_version_is_reproduced():
    assert NORMALIZER_VERSION == "3"
    assert "slash" not in normalize_text("12/05/2024") and "December" in normalize_text("12/05/2024")
    assert normalize_text("12/05/2024", version="2") == "twelve/five/two thousand twenty-four"
    fe = TextFrontend.default(normalizer_version="2")       # a model trained on version 2 text
    assert fe.normalize("12/05/2024") == "twelve/five/two thousand twenty-four"
    assert fe.settings.normalizer_version == "2" and fe.fingerprint() != TextFrontend.default().fingerprint()


def test_unpronounceable_names_other_scripts_and_emoji():
    clean, runs = unpronounceable("Hello 你好 world 😀! مرحبا café naïve 3°C €5 👍🏽 Привет done")
    assert runs == ["你好", "😀", "مرحبا", "👍🏽", "Привет"]
    assert clean.split() == ["Hello", "world", "!", "café", "naïve", "3°C", "€5", "done"]
    assert unpronounceable("Dr. Smith paid $3.50 — 20% off… “quoted”") == (
        "Dr. Smith paid $3.50 — 20% off… “quoted”", [])
