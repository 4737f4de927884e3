"""The Lab contract, free of I/O: spec and status types, conditions and their reasons,
naming constants, the check-result wire document."""
