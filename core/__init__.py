"""The plumbing every part of the project shares; it imports nothing of data_prep, codec or tts.

    config.py      dataclass configs: defaults in code, YAML overrides, `key=value` last (load_config,
                   apply_overrides, to_dict/from_dict, save_config, ConfigError)
    io.py          atomic writes, JSONL, paths stored relative to their file, sha256_file
    progress.py    a progress bar on a terminal, a line every 5% (or 100 steps / a minute) in a log file
    logs.py        the logging set-up of entry points (per rank in training)
    runtime.py     process settings before torch loads (OpenMP waiting, denormals), usable cores
    seeding.py     named random streams and the RNG states a checkpoint carries
    distrib.py     the few collectives the quantizers need (no-ops in one process)
    checkpoint.py  training step directories and model directories (config.json + model.safetensors)
    hub.py         model arguments that are a local directory or a Hugging Face Hub id
    training.py    TrainingRun, the loop skeleton every train.py runs in: accelerator, resume,
                   checkpoints, budget, non-finite steps, summary; run_cli (one ending for the CLIs)
    trainer.py     its pieces: accelerator, budget, step guard, loss log, lr schedules, debug hooks
    lazy.py        package faces that import on first use (`from codec import Codec` loads torch then)
"""
