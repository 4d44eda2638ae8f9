"""The daily report: ``data`` reads the database, ``render`` builds HTML/figures/summary, ``archive`` writes the
atomic archive, ``mail`` delivers it over SMTP."""
