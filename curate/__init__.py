"""curate: curate and mix LLM instruction-tuning data.

    from curate import Pipeline, steps

Importing this package stays light: heavy libraries (torch, transformers models, sentence-transformers)
are imported inside the steps that need them, and `Pipeline` only when first used.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Pipeline":
        from curate.pipeline import Pipeline

        return Pipeline
    if name == "steps":
        import importlib

        return importlib.import_module("curate.steps")
    raise AttributeError(name)
