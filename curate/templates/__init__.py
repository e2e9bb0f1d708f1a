"""Chat templates: turn canonical messages into training text with assistant spans marked."""

from curate.templates.render import Templater, render
from curate.templates.spec import TemplateSpec, builtin_formats

__all__ = ["Templater", "TemplateSpec", "builtin_formats", "render"]
