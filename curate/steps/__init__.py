"""Steps, one class per file, in four roles (see curate.steps.base)."""
