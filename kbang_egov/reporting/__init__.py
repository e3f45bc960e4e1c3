"""Reporting: a run's results as pandas tables and the files an officer reads.

`tables` builds the run's DataFrames, `ranking` ranks the districts, `report_writer` writes the workbook
and CSVs, `summary` is the run's summary on the terminal, `runlog` keeps the run log and dated copies,
`history` keeps every run in DIR/history.sqlite, `baseline` reads a ranking to compare tonight's with, `feedback` writes one district's annotated return.
"""
