"""curate: curate and mix LLM instruction-tuning data.

Importing this package stays light: heavy libraries (torch, transformers models, sentence-transformers)
are imported inside the steps that need them.
"""

__version__ = "0.1.0"
