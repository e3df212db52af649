"""What a search will cost before it runs: FLOPs of a training step, measured GPU throughput, GPU-hours."""
