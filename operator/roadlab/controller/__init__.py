"""The operator process: Kopf handlers, the reconciler and what it applies."""
