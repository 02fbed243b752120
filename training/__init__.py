"""Pre-training, fine-tuning, data pipelines and distribution strategies."""
