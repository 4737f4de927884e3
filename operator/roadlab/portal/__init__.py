"""roadlab-portal: the learner's lab in a browser (guide, terminal, live tasks, check, extend).

A Lab's link carries its access token (a Secret the operator keeps); signing in with it
gives a session for that one Lab. Whatever the portal does to the Lab, and the terminal,
it does with a token of the Lab's own `learner` ServiceAccount, never with its own rights.
"""
