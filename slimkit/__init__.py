"""Training and evaluation machinery shared by the command-line scripts."""
