"""A forced aligner trained by the toolkit itself: a small CTC phoneme recognizer on log-mels at the
codec's frame rate, Viterbi alignment of each utterance's phones to its code frames, and per-token
durations for a duration-conditioned TTS (docs/durations.md). The recognizer doubles as a phoneme
error rate metric (`recognizer.PhonemeRecognizer`, `recognizer.phoneme_error_rate`).

    python -m tts.align.train --dump data/codes/train-clean-100 --valid-dump data/codes/dev-clean \
        train.exp_dir=exp/aligner
    python -m tts.align.durations --model exp/aligner/model --dump data/codes/train-clean-100 \
        --out data/durations/train-clean-100.jsonl

Modules: phones (the target inventory), features (log-mels framed like the codec), corpus (utterances
of a dump or manifest, features in memory), model (the CTC recognizer), viterbi (forced alignment and
token durations), train, durations (the CLI writing duration files), recognizer (inference + PER),
boundaries (boundary error against espeak-ng's own phoneme timings, mini corpus only), espeak_timing
(those timings from libespeak-ng).
"""
