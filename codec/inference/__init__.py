"""What runs behind `codec.api.Codec`: the folded eval-mode engine (engine.py), canonical windows and
streaming (streaming.py: codes independent of batch and chunking), and the inference rewrites
(optimize.py: weight norm folded, channels-last convolutions, bf16, the fused quantizer)."""
