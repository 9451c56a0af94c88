"""Studies that drive the library and the recipe (they are not part of the library: nothing in core,
data_prep, codec or tts imports them).

    ablation/   NDVQ vs RVQ: codecs trained per variant and seed, scored, and optionally the TTS trained
                on each (variant, seed)'s codes through egs/libritts/run.sh (docs/ablation.md)
"""
