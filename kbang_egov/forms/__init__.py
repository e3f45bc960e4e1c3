"""Forms: the standard Excel template districts fill in, and sample returns made from it.

`layout` is where every label and cell sits (the one map of Excel headers to names), `template` writes the
template, `samples` writes the demonstration returns (a command of its own, not on the batch's path).
"""
