"""The chapters' small tasks and their data loaders, one module per task (data files live in llmlab/data/)."""
