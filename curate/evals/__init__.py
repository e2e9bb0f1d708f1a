"""The evaluation suite run on fine-tuned models and their base models.

- the recipe's `evals:` section (EvalSpec, EvalTask, presets arc_easy / mmlu / gsm8k) is curate.specs.evals;
- data.py: task rows from curate sources, seeded samples, prompts in a chat template;
- multiple_choice.py: accuracy and MAP@3 by option log-likelihood;
- gsm8k.py: exact match of the final number;
- generation.py: greedy generation, ROUGE-L and BLEU;
- loss.py: mean assistant-token loss on held-out rows (and each row's own loss);
- harness.py: `kind: lm_eval`, lm-evaluation-harness tasks on the model object (harness_tasks/: the shipped local
  ARC-Easy, MMLU and GSM8K task YAMLs);
- suite.py: all of them for one model, the cached base model, domain gain and forgetting.
"""
