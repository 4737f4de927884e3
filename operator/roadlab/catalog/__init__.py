"""The lab catalog: the lab.yaml schema, its loader, parameters and rules, rendering,
lab policy."""
