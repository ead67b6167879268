"""The kit's machinery, not a topic to study: the command line, setup and launch, exercise generation and progress,
the classroom hub, model fetching, the network guard, tiny test fixtures and the LIT app.

Standard library only at import time (`python3.11 -m llmlab setup` imports llmlab.kit.launch before .venv exists).
"""
