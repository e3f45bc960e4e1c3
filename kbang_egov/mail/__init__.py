"""The mail loop: send each district its template, collect the returns from a mailbox, send the feedback.

`contacts` reads the district,email CSV, `messages` composes the Vietnamese messages, `outgoing` sends each
district its template or feedback once, through `smtp` (a logged-in SMTP connection, or a dry-run outbox of
.eml files), `collect` saves returned workbooks from a Maildir or IMAP under safe names, and `ledger`
remembers what was sent and collected in DIR/history.sqlite.
"""
