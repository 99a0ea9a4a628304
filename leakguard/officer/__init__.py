"""The security officer's desk (issue 9): the decision journal and retained mail, incident
reports and alerts, statistics per rule and department, replay of a new policy, and the
audit-first rollout report. Everything here reads the same store as the relay (DESIGN §11).
"""
