"""The SMTP front: listeners, AUTH, the BCC rewrite and the execution of verdicts."""
