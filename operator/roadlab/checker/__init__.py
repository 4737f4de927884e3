"""The checker process: runs a lab's probes and reports the results, once as a check Job or
on request as the warm checker (`roadlab-check --serve`)."""
