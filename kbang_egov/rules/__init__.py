"""Rules: the rulebook and what it says about a return.

`rulebook` loads the versioned criteria (YAML data), `scoring` is the pure score of one criterion,
`checks` yields a return's findings, `findings` is the registry of finding codes and messages,
`districts` matches unit names to the province's districts, `results` holds what a checked return gives.
"""
