"""An offline, seeded source of English sentences for the mini corpus, with held-out text per split.

Two sources, mixed: hand-written sentences (digits, abbreviations, dates, money, quotes and dashes in
their original form) and a small template grammar that produces sentences from two to about
twenty-five words. Each split has its own: training uses :data:`BUNDLED` and :data:`TRAIN_VOCAB`;
dev and test use their own hand-written sentences (:data:`BUNDLED_DEV`, :data:`BUNDLED_TEST`) and
vocabularies whose content words (names, nouns, adjectives, verbs, adverbs, places, times) occur in
no other split (:data:`DEV_VOCAB`, :data:`TEST_VOCAB`; :func:`heldout_words` lists them), so a zero-shot
test reads words and sentences the model never met. Function words and number words are shared.

``make_sentences(n, seed, split=...)`` returns ``(original, normalized)`` pairs; the normalized text
comes from :func:`data_prep.text.normalize_text`. Same seed, same sentences.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from data_prep.text import normalize_text

__all__ = ["BUNDLED", "BUNDLED_V1", "BUNDLED_DEV", "BUNDLED_TEST", "Vocabulary", "TRAIN_VOCAB", "DEV_VOCAB", "TEST_VOCAB",
           "Split", "generate_sentence", "make_sentences", "heldout_words", "handwritten"]

Split = Literal["train", "dev", "test"]

# hand-written training sentences
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
    # pauses, colons and less common phones, so that training covers what test sentences use
    "She waited by the door - and then, at last, the bell rang.",
    "I thought I heard a voice... but nobody was there.",
    "The rule was simple: whoever came last would wash the pots.",
    "He found the treasure \u2014 a tin box of old buttons.",
    "Well\u2026 perhaps we should measure it again.",
    "It was the usual story: a lost key, a locked gate and a long wait.",
    "The vision faded slowly, like a dream at dawn.",
    "\"Leave it,\" she said. \"We can decide tomorrow.\"",
    "Three things matter here: patience, courage, and a warm coat.",
    "The garage smelled of oil -- and of something sweeter.",
    "At 8:30 the baker opened the shutters and lit the ovens.",
    "He read the sign twice... and still took the wrong road.",
    "Our neighbour's collie was a pleasure to watch at work.",
    "It cost $12.50 \u2014 far too much for a loaf of rye bread.",
    "They spoke of the invasion in low, anxious voices.",
)

# the hand-written sentences of corpus version 1 (all of them were training sentences then)
BUNDLED_V1: tuple[str, ...] = BUNDLED[:60]

# hand-written sentences read only by the test speakers (the normaliser's kinds: dates, years, money,
# times, units, ordinals, decimals, negatives, abbreviations, quotes, dashes, ellipses)
BUNDLED_TEST: tuple[str, ...] = (
    "Agnes bought 3 lemons for $1.20 at the Thursday market.",
    "The telescope arrived on the 14th of June, 2011, in a wooden crate.",
    "Dr. Pemberton measured the pendulum: it swung 42 times a minute.",
    "\"Mind the cauldron!\" shouted the innkeeper.",
    "At 6:45 the ferryman rang the brass bell twice.",
    "The kayak is 4.5 m long and weighs 23 kg.",
    "It was -12°C when the astronomer opened the dome.",
    "Percival paid £7.50 for a tattered accordion.",
    "In 1962 the carnival came to town for the 1st time.",
    "The chemist mixed 250 ml of vinegar with a pinch of salt... and waited.",
    "Mrs. Quill keeps 17 thimbles in a velvet box.",
    "The surgeon's train leaves at 11:05 p.m. on Fridays.",
    "Only 8% of the pumpkins survived the thunderstorm.",
    "Ophelia found a spyglass, a quilt, etc. in the attic trunk.",
    "The locksmith charged €45 to open the satchel.",
    "Room No. 9 has a harpsichord and a broken chandelier.",
    "The banker's typewriter clattered until midnight - then silence.",
    "Thaddeus juggled 5 walnuts while the fiddler played.",
    "The trombone cost $2,300, which seemed a lot for a tailor.",
    "We sailed along the canal for 3.5 hrs without a word.",
    "Cecily turned 21 on the 2nd of February.",
    "The microscope was made in 1875 by a jeweller in Geneva.",
    "Barnaby, is that your wheelbarrow by the greenhouse?",
    "The birdcage hung 6 ft. above the cobbler's bench.",
    "Between 1990 and 2005 the bakery changed owners 4 times.",
    "The librarian whispered, \"Chapter 12 is missing.\"",
    "Jasper drove the carriage at 30 km/h through the fog.",
    "Imogen sketched the archway at 7:30 a.m. sharp.",
    "Lavinia's suitcase held 2 goblets and a jagged stone.",
    "The potter sold 1,250 bowls in his 3rd year.",
    "A cold wind \u2014 sharp and sudden \u2014 rattled the envelope.",
    "The pilot checked the fuel: 0.75 of a tank remained.",
    "Montague won the race by 1/4 of a second.",
    "Fergus hid the radish under the hammock, or so he claimed.",
    "Prof. Whitcombe ordered 24 cabbages for the banquet.",
    "The tapestry was 300 years old and surprisingly glossy.",
    "Rosalind rode her bicycle 15 km to the lighthouse keeper's cottage.",
    "At 9:00 the architect unfolded her drawings on the floor.",
    "Desmond owed the pharmacy $0.85, and he paid it in pennies.",
    "The pitchfork leaned against the fountain\u2026 forgotten.",
    "Gwendolyn weighed the saucepan: 2.2 lbs exactly.",
    "The trumpet sounded 3 times on New Year's Eve.",
    "Horace, the 2nd son, inherited the spyglass in 1938.",
    "\"Is the pier safe?\" asked Eloise. \"Not after dark.\"",
    "Capt. Hargreave rescued 11 sailors from the murky water.",
)
# hand-written sentences read only by the dev (unseen-speaker validation) speakers
BUNDLED_DEV: tuple[str, ...] = (
    "Winifred tuned her guitar at 8:15 every evening.",
    "The plumber charged $65.40 for a new skillet handle.",
    "In 1974 the sculptor moved into the gymnasium.",
    "Rupert flew his kite 120 m above the aquarium.",
    "\"Grumpy again?\" asked the dentist.",
    "The grocer stacked 36 pillows on the tidy shelf.",
    "Dorothea snored through the 3rd act of the play.",
    "Mr. Ambrose paid £12.99 for a wobbly easel.",
    "It was -4°C at teatime on Tuesday.",
    "The courier delivered the toolbox on the 9th of April, 1983.",
    "Ignatius sharpened 14 pencils \u2014 then he sneezed.",
    "About 40% of the scarecrows were plump and shabby.",
    "Millicent hummed while the butcher sorted the trophies.",
    "The novelist peeled 7 apples... slowly.",
    "Bartholomew folded the tablecloth at 10:20 p.m.",
    "The janitor's harmonica weighs 0.3 kg.",
    "Clementine won a trophy for the sled race in 2016.",
    "\"Calmly, please,\" said the dainty sculptor.",
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


@dataclass(frozen=True)
class Vocabulary:
    """The content words of one split's template sentences."""
    names: tuple[str, ...]
    people: tuple[str, ...]
    things: tuple[str, ...]
    adjs: tuple[str, ...]
    verbs_past: tuple[str, ...]
    verbs_intr: tuple[str, ...]
    advs: tuple[str, ...]
    places: tuple[str, ...]
    times: tuple[str, ...]

    def content_words(self) -> set[str]:
        """Every word of the pools except function words (lower case)."""
        out: set[str] = set()
        for pool in (self.names, self.people, self.things, self.adjs, self.verbs_past, self.verbs_intr,
                     self.advs, self.places, self.times):
            for phrase in pool:
                out.update(w for w in phrase.lower().replace("'s", "").split() if w not in _FUNCTION_WORDS)
        return out


_FUNCTION_WORDS = frozenset("the a an of at by in on to near next inside outside beside behind beneath under "
                            "across along around during after before last that years ago".split())

TRAIN_VOCAB = Vocabulary(tuple(_NAMES), tuple(_PEOPLE), tuple(_THINGS), tuple(_ADJS), tuple(_VERBS_PAST),
                         tuple(_VERBS_INTR), tuple(_ADVS), _PLACES, _TIMES)
TEST_VOCAB = Vocabulary(
    names=tuple("Agnes Barnaby Cecily Desmond Eloise Fergus Gwendolyn Horace Imogen Jasper Lavinia Montague "
                "Ophelia Percival Rosalind Thaddeus".split()),
    people=tuple("lawyer tailor cobbler jeweller librarian pilot astronomer chemist surgeon banker fiddler "
                 "ferryman innkeeper architect locksmith potter".split()),
    things=tuple("telescope trumpet envelope saucepan carriage pendulum chandelier harpsichord thimble tapestry "
                 "kayak cauldron wheelbarrow typewriter accordion microscope satchel hammock goblet quilt "
                 "spyglass pitchfork birdcage bicycle suitcase walnut pumpkin cabbage radish lemon trombone "
                 "archway".split()),
    adjs=tuple("velvet jagged solemn brittle glossy murky nimble peculiar sparkling tattered vivid weathered "
               "fragrant ornate feeble".split()),
    verbs_past=tuple("inspected sketched stitched unfolded juggled smuggled scrubbed delivered tossed rescued "
                     "weighed measured".split()),
    verbs_intr=tuple("giggled shrugged fidgeted grumbled chuckled wept blushed hesitated marched".split()),
    advs=tuple("briskly cautiously merrily solemnly awkwardly swiftly lazily".split()),
    places=("near the railway depot", "inside the greenhouse", "behind the bakery", "across the canal",
            "beneath the archway", "next to the pharmacy", "around the fountain", "along the pier"),
    times=("on Thursday", "at midnight", "during the carnival", "after the thunderstorm", "before breakfast"),
)
DEV_VOCAB = Vocabulary(
    names=tuple("Bartholomew Clementine Dorothea Ignatius Millicent Rupert Winifred Ambrose".split()),
    people=tuple("plumber dentist butcher novelist grocer sculptor janitor courier".split()),
    things=tuple("guitar kite pillow skillet harmonica easel scarecrow tablecloth toolbox trophy paddle "
                 "sled".split()),
    adjs=tuple("bashful dainty grumpy plump shabby tidy wobbly zealous".split()),
    verbs_past=tuple("ironed folded peeled scraped sharpened stacked sorted".split()),
    verbs_intr=tuple("snored sneezed hummed frowned winked".split()),
    advs=tuple("loudly calmly clumsily".split()),
    places=("near the post office", "behind the laundry", "inside the gymnasium", "beside the aquarium"),
    times=("on Tuesday", "at teatime", "during the blizzard"),
)
_VOCABS: dict[str, Vocabulary] = {"train": TRAIN_VOCAB, "dev": DEV_VOCAB, "test": TEST_VOCAB}
_BUNDLES: dict[str, tuple[str, ...]] = {"train": BUNDLED, "dev": BUNDLED_DEV, "test": BUNDLED_TEST}


def heldout_words(split: Split) -> list[str]:
    """The content words only ``split`` uses (sorted): the test-only (dev-only) word list."""
    if split == "train":
        raise ValueError("heldout_words is for 'dev' or 'test'")
    return sorted(_VOCABS[split].content_words())


def handwritten(split: Split) -> tuple[str, ...]:
    """The hand-written sentences of ``split``."""
    return _BUNDLES[split]


def _np(r: random.Random, v: Vocabulary, det: bool = True) -> str:
    noun = r.choice(v.things)
    adj = r.choice(v.adjs) + " " if r.random() < 0.6 else ""
    if r.random() < 0.25:
        num = r.randint(2, 999) if r.random() < 0.8 else r.randint(1000, 99999)
        return f"{num:,} {adj}{noun}s" if num >= 1000 and r.random() < 0.5 else f"{num} {adj}{noun}s"
    return (r.choice(("the", "a", "that", "her", "his", "our")) + " " if det else "") + adj + noun


def _subject(r: random.Random, v: Vocabulary) -> str:
    x = r.random()
    if x < 0.35:
        return r.choice(v.names)
    if x < 0.45:
        return r.choice(("Dr.", "Mr.", "Mrs.", "Capt.", "Prof.")) + " " + r.choice(v.names)
    return "the " + (r.choice(v.adjs) + " " if r.random() < 0.4 else "") + r.choice(v.people)


def _clause(r: random.Random, v: Vocabulary) -> str:
    s = _subject(r, v)
    if r.random() < 0.6:
        c = f"{s} {r.choice(v.verbs_past)} {_np(r, v)}"
    else:
        c = f"{s} {r.choice(v.verbs_intr)}"
    if r.random() < 0.4:
        c += " " + r.choice(v.advs)
    if r.random() < 0.5:
        c += " " + r.choice(v.places)
    if r.random() < 0.3:
        c += " " + (r.choice(v.times) if r.random() < 0.7 else f"in {r.randint(1700, 2030)}")
    return c


def generate_sentence(r: random.Random, vocab: Vocabulary = TRAIN_VOCAB) -> str:
    """One sentence from the template grammar (original form: digits, abbreviations, punctuation)."""
    v = vocab
    kind = r.random()
    if kind < 0.12:  # short exclamations and questions
        s = r.choice((f"{r.choice(v.names)}, {r.choice(('look', 'wait', 'listen', 'come here'))}!",
                      f"Where is {_np(r, v)}?", f"Who {r.choice(v.verbs_past)} {_np(r, v)}?",
                      f"What a {r.choice(v.adjs)} {r.choice(v.things)}!"))
        return s[0].upper() + s[1:]
    parts = [_clause(r, v)]
    n_more = r.choices((0, 1, 2), weights=(5, 4, 1))[0]
    for _ in range(n_more):
        parts.append(("; " if r.random() < 0.15 else ", " if r.random() < 0.5 else " ")
                     + r.choice(_CONJ) + " " + _clause(r, v))
    if r.random() < 0.15:
        parts.append(f", and it cost ${r.randint(1, 500)}.{r.randint(0, 99):02d}")
    if len(parts) > 1 and r.random() < 0.12:  # a dash pause instead of a plain join
        parts[1] = " \u2014 " + parts[1].lstrip(",; ")
    s = "".join(parts).replace(" ; ", "; ")
    s = s.replace("; and", "; and").replace(", ;", ";")
    end = r.choices((".", "!", "?", "..."), weights=(81, 8, 7, 4))[0]
    return s[0].upper() + s[1:] + end


def make_sentences(n: int, seed: int, bundled_fraction: float = 0.15, min_words: int = 4,
                   max_words: int = 22, split: Split = "train") -> list[tuple[str, str]]:
    """``n`` (original, normalized) sentence pairs of ``split``, deterministic for ``seed``.

    About ``bundled_fraction`` of them are the split's hand-written sentences (each used at most once),
    the rest template sentences over the split's vocabulary. Generated sentences outside
    ``min_words..max_words`` normalized words are drawn again (keeps utterances within about 1-12 s at
    espeak's speaking rates); a generated sentence already drawn is drawn again too.
    """
    if split not in _VOCABS:
        raise ValueError(f"split must be one of {sorted(_VOCABS)}, not {split!r}")
    r = random.Random(seed)
    out: list[tuple[str, str]] = []
    bundled = list(_BUNDLES[split])
    r.shuffle(bundled)
    seen: set[str] = set()
    for i in range(n):
        if bundled and r.random() < bundled_fraction:
            orig = bundled.pop()
        else:
            orig = generate_sentence(r, _VOCABS[split])
            for _ in range(100):
                if min_words <= len(normalize_text(orig).split()) <= max_words and orig not in seen:
                    break
                orig = generate_sentence(r, _VOCABS[split])
        seen.add(orig)
        out.append((orig, normalize_text(orig)))
    return out
