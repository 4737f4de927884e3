"""The check Job process: runs a lab's probes and reports the results."""
