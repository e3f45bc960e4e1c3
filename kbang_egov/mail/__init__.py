"""The mail loop: send each district its template, collect the returns from a mailbox, send the feedback."""
