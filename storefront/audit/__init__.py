"""Audit trail of admin actions (adjustments, imports, refunds, catalogue edits)."""
