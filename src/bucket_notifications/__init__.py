"""The custom resource that attaches the trigger to an existing bucket (app.py)."""
