"""Automation: sensors and a schedule that retrain the model as data scientists expect."""
