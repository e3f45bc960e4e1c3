"""Operations: running the night safely.

`pipeline` drives a run, `isolation` reads each file in a bounded worker process, `runlock` keeps two runs
apart, `publish` makes one run's outputs appear together, `atomic` writes a file whole or not at all,
`feedback_pass` writes each district's feedback workbook in isolated workers after ranking, `validate` is
the clerk's check of a return before sending it.
"""
