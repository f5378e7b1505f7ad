"""The apsw store: the only package that speaks SQL."""
