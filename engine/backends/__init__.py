"""Inference backends behind one small interface (see `base.Backend`).

The names users choose from (CLI, settings); ``engine.model.BACKEND_LOADERS`` loads each local one.
"""

LOCAL_BACKENDS = ("auto", "torch", "ct2", "transformers", "llamacpp")
BACKENDS = (*LOCAL_BACKENDS, "http")

# What `--help` says of the choice made by "auto".
AUTO_HELP = (
    "auto = llamacpp for GGUF models (the catalog's default), ct2 for Hugging Face checkpoints, with "
    "torch for cold prompts of small GPTBigCode models on CPUs with bfloat16 matrix instructions"
)
