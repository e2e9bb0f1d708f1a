"""The recipe's section schemas, one module per section: what `curate validate` checks before anything runs.

- source.py: `sources:` entries (also an evaluation's and a text set's source);
- mix.py: `mix:`; ablate.py: `ablate:`; card.py: `card:`;
- train.py: `train:` and `compare:`; evals.py: `evals:`.

They sit in the recipe layer, below the steps, the engine and the features that carry them out (curate.mix,
curate.ablate, curate.card, curate.train, curate.evals), so the recipe validates every section without
importing any of that code. The template section's schema stays with the templates it names
(curate.templates.spec), and each step's parameters with its step (`Params`).
"""
