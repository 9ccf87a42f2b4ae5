"""What a run reports: metrics.json per model, the comparison report, the sweep table,
statistics and plots."""
