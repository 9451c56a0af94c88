"""The data front end: corpus, manifests, text and phonemes, for the codec and the TTS.

* download: LibriTTS subsets (checksums, resumable); mini_corpus: the small synthetic corpus of espeak-ng
  voices for 2-core runs (`python -m data_prep.mini_corpus`); sentences: its sentence pool;
* libritts: manifests `<subset>.jsonl` of a LibriTTS-layout corpus (`python -m data_prep.libritts`);
* audio: loading, resampling, saving (16-bit PCM), with one-line errors;
* text: the text normaliser (numbers, dates, abbreviations; versioned);
* symbols: the fixed, versioned phoneme symbol table; espeak: phonemisation through espeak-ng;
* frontend: TextFrontend, the one text -> ids pipeline of training and inference;
* phonemes: the phonemes stage (`python -m data_prep.phonemes`);
* check: the leakage check of a train/dev/test split (`python -m data_prep.check`).

Imports run one way: symbols <- espeak <- frontend <- phonemes; data_prep imports only core.
"""
