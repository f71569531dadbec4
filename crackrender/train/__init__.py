"""Training: experiment configs, losses, the Lightning task and data, and `run_training`."""
