"""Reports of a run: a summary for people, JSON and JUnit XML for pipelines, HTML with plots."""
