"""``qdet search``: a hardware-aware multi-objective co-design search on Optuna (space, trial, study, report)."""
