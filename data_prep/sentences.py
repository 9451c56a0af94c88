"""An offline, seeded source of English sentences for the mini corpus.

Two sources, mixed: a bundled list of hand-written sentences (with digits, abbreviations and
punctuation in their original form) and a small template grammar over a few hundred words that
produces sentences from two to about twenty-five words. ``make_sentences(n, seed)`` returns
``(original, normalized)`` pairs; the normalized text comes from :func:`data_prep.text.normalize_text`.
Same seed, same sentences.
"""
from __future__ import annotations

import random

from data_prep.text import normalize_text

__all__ = ["BUNDLED", "generate_sentence", "make_sentences"]

BUNDLED: tuple[str, ...] = (
    "The train left the station at 7 o'clock, exactly on time.",
    "Dr. Harlow kept 12 jars of honey on the top shelf.",
    "It rained for 3 days, and then the river rose by 2 feet.",
    "Mr. Finch said, \"Close the gate before the goats get out!\"",
    "We walked 15 miles before we found a place to sleep.",
    "The old map showed an island that nobody had ever visited.",
    "Bring the lantern; the cellar is darker than you think.",
    "Mrs. Abbott paid $4.75 for a loaf of bread and a pound of butter.",
    "In 1887 the bridge was painted green, and it has stayed green ever since.",
    "Why would anyone leave a violin in the rain?",
    "She counted 48 sheep, then fell asleep by the fire.",
    "The letter arrived on the 3rd of March, two weeks too late.",
    "Nobody knew where the little dog had come from.",
    "He whistled a tune his grandmother used to sing.",
    "The kettle boiled, the cat yawned, and the clock struck 9.",
    "About 60% of the apples were ripe enough to pick.",
    "The committee met on the 21st floor of the tall grey building.",
    "Could you pass the salt, please?",
    "The lighthouse keeper wrote in his journal every single night.",
    "A gust of wind carried the newspaper across the square.",
    "St. Peter's church has a bell that weighs 2,400 pounds.",
    "They sailed north for 11 days without seeing land.",
    "The baker's daughter was the fastest runner in the village.",
    "Keep your voice down; the baby is finally asleep.",
    "The museum opens at 10 and closes at 5 on Sundays.",
    "Snow covered the fields, the roads, and the roofs of the farms.",
    "Prof. Lind explained the experiment twice, but nobody understood it.",
    "The recipe calls for 2 cups of flour and 3 eggs.",
    "What a strange and wonderful evening that was!",
    "The fisherman mended his nets while the gulls watched.",
    "On the 1st of May, the whole town gathered in the meadow.",
    "His watch was 5 minutes slow, so he missed the ferry.",
    "The candle flickered and went out.",
    "There were 365 steps to the top of the tower.",
    "The garden was full of roses, tulips, and wild mint.",
    "Capt. Morrow ordered the crew to raise the sails at dawn.",
    "I have never seen so many stars in one sky.",
    "The price of tea rose to £2.50 a box that winter.",
    "Every morning the postman whistled the same three notes.",
    "The children built a fort out of blankets and chairs.",
    "In 2004 the library moved to a larger building near the park.",
    "She opened the window and let the cold air in.",
    "The horse stopped suddenly at the edge of the stream.",
    "Forty-two people signed the letter, including the mayor.",
    "He read the last page, closed the book, and smiled.",
    "The storm knocked down 7 trees along the north road.",
    "Is this the road to the harbour, or have we taken a wrong turn?",
    "The bells rang out across the valley at noon.",
    "Her brother collected stamps from 30 different countries.",
    "The soup was too hot, so they waited a while.",
    "A small boat drifted slowly past the sleeping town.",
    "The teacher wrote 1,000 on the board and asked us to read it aloud.",
    "They found the key under a stone by the back door.",
    "The owl called twice, and then the woods fell silent.",
    "Gen. Baxter rode at the front of the long column.",
    "Thank you for the flowers; they are lovely.",
    "The clock on the tower has been broken since 1952.",
    "We planted 25 oak trees along the edge of the field.",
    "He spoke quietly, as if someone might be listening.",
    "The painter mixed blue and yellow to make a soft green.",
)

_NAMES = ("Anna Ben Clara Daniel Edith Felix Grace Henry Iris Jonah Kate Leo Mara Noah Olive Peter Quinn Rose "
          "Samuel Tessa Victor Wendy Arthur Beatrice Conrad Delia Ernest Flora Gideon Hazel Isaac Julia").split()
_PEOPLE = ("farmer sailor teacher doctor baker painter soldier miller weaver poet child stranger merchant "
           "shepherd carpenter gardener traveller student clerk captain widow fisherman singer judge nurse "
           "blacksmith hunter priest mayor musician").split()
_THINGS = ("basket lantern letter river window garden bridge candle mirror ladder blanket kettle wagon bottle "
           "compass feather hammer rope needle violin saddle bucket chimney orchard harbour meadow forest valley "
           "cottage castle chapel market village tower island mountain desert ocean pocket journal parcel coin "
           "ribbon shovel umbrella teapot barrel engine clock map spoon lamp door gate fence path road field "
           "stone apple loaf cloak boot hat scarf drum whistle bell book pencil jar nest boat sail anchor").split()
_ADJS = ("old quiet bright narrow heavy golden broken gentle distant crooked silver wooden dusty tiny enormous "
         "ancient careful sleepy hungry curious shallow frozen crowded empty patient clever stubborn lonely "
         "cheerful muddy polished crimson pale rusty warm cold wet dry strange familiar hidden humble proud "
         "restless faithful clumsy graceful noisy silent simple fragile sturdy").split()
_VERBS_PAST = ("carried found opened painted lifted dropped mended followed watched counted polished hid buried "
               "borrowed sold bought cleaned carved packed chased fixed pulled pushed covered guarded noticed "
               "remembered forgot dragged washed wrapped traded visited crossed climbed").split()
_VERBS_INTR = ("laughed waited wandered slept sang whispered hurried paused shivered listened smiled argued "
               "trembled rested vanished returned stumbled danced prayed sighed").split()
_ADVS = ("slowly quietly suddenly carefully gladly wearily gently boldly patiently eagerly nervously proudly "
         "happily sadly silently barely nearly").split()
_PLACES = ("by the river", "in the garden", "near the old mill", "at the edge of the forest", "on the hill",
           "behind the church", "under the bridge", "in the market square", "beside the harbour",
           "across the valley", "at the top of the stairs", "inside the barn", "along the coast road",
           "beneath the oak tree", "outside the tavern", "in the attic")
_TIMES = ("that morning", "at dawn", "before supper", "late at night", "in the spring", "last winter",
          "after the storm", "on Sunday", "at noon", "during the festival", "the next day", "years ago")
_CONJ = ("and", "but", "so", "while", "because", "although", "until", "before", "after")


def _np(r: random.Random, det: bool = True) -> str:
    noun = r.choice(_THINGS)
    adj = r.choice(_ADJS) + " " if r.random() < 0.6 else ""
    if r.random() < 0.25:
        num = r.randint(2, 999) if r.random() < 0.8 else r.randint(1000, 99999)
        return f"{num:,} {adj}{noun}s" if num >= 1000 and r.random() < 0.5 else f"{num} {adj}{noun}s"
    return (r.choice(("the", "a", "that", "her", "his", "our")) + " " if det else "") + adj + noun


def _subject(r: random.Random) -> str:
    x = r.random()
    if x < 0.35:
        return r.choice(_NAMES)
    if x < 0.45:
        return r.choice(("Dr.", "Mr.", "Mrs.", "Capt.", "Prof.")) + " " + r.choice(_NAMES)
    return "the " + (r.choice(_ADJS) + " " if r.random() < 0.4 else "") + r.choice(_PEOPLE)


def _clause(r: random.Random) -> str:
    s = _subject(r)
    if r.random() < 0.6:
        c = f"{s} {r.choice(_VERBS_PAST)} {_np(r)}"
    else:
        c = f"{s} {r.choice(_VERBS_INTR)}"
    if r.random() < 0.4:
        c += " " + r.choice(_ADVS)
    if r.random() < 0.5:
        c += " " + r.choice(_PLACES)
    if r.random() < 0.3:
        c += " " + (r.choice(_TIMES) if r.random() < 0.7 else f"in {r.randint(1700, 2030)}")
    return c


def generate_sentence(r: random.Random) -> str:
    """One sentence from the template grammar (original form: digits, abbreviations, punctuation)."""
    kind = r.random()
    if kind < 0.12:  # short exclamations and questions
        s = r.choice((f"{r.choice(_NAMES)}, {r.choice(('look', 'wait', 'listen', 'come here'))}!",
                      f"Where is {_np(r)}?", f"Who {r.choice(_VERBS_PAST)} {_np(r)}?",
                      f"What a {r.choice(_ADJS)} {r.choice(_THINGS)}!"))
        return s[0].upper() + s[1:]
    parts = [_clause(r)]
    n_more = r.choices((0, 1, 2), weights=(5, 4, 1))[0]
    for _ in range(n_more):
        parts.append(("; " if r.random() < 0.15 else ", " if r.random() < 0.5 else " ")
                     + r.choice(_CONJ) + " " + _clause(r))
    if r.random() < 0.15:
        parts.append(f", and it cost ${r.randint(1, 500)}.{r.randint(0, 99):02d}")
    s = "".join(parts).replace(" ; ", "; ")
    s = s.replace("; and", "; and").replace(", ;", ";")
    end = r.choices((".", "!", "?"), weights=(85, 8, 7))[0]
    return s[0].upper() + s[1:] + end


def make_sentences(n: int, seed: int, bundled_fraction: float = 0.15, min_words: int = 4,
                   max_words: int = 22) -> list[tuple[str, str]]:
    """``n`` (original, normalized) sentence pairs, deterministic for ``seed``.

    Generated sentences outside ``min_words..max_words`` normalized words are drawn again (keeps
    utterances within about 1-12 s at espeak's speaking rates).
    """
    r = random.Random(seed)
    out = []
    bundled = list(BUNDLED)
    r.shuffle(bundled)
    for i in range(n):
        if bundled and r.random() < bundled_fraction:
            orig = bundled.pop()
        else:
            orig = generate_sentence(r)
            while not min_words <= len(normalize_text(orig).split()) <= max_words:
                orig = generate_sentence(r)
        out.append((orig, normalize_text(orig)))
    return out
