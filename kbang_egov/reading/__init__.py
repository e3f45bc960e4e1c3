"""Reading: take one returned workbook off the disk safely and turn it into cell values.

`inbox` opens input files (regular files only, bounded), `guard` screens a workbook's container before any
parser sees it, `reader` reads the sheets with python-calamine, `values` parses what a clerk typed.
"""
