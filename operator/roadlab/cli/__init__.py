"""kubectl lab: the learner's command line."""
