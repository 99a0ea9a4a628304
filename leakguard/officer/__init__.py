"""The security officer's tools: replaying mail under a new policy (``replay*``), and more.

These read saved or retained mail and the store; they never act on mail.
"""
