"""The run engine: the planner decides, the runner hands each job to the submitter, the
tracker or the downloader, and the journal records every transition."""
