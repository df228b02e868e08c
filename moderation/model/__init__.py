"""Asking the model: the Ollama host client, the classifier pool, prompts, labels, confidence."""
