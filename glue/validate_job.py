"""AWS Glue job: discover and validate the landing zone (the run `--run-id`, or a new one; in a
Glue workflow, the new run's id goes into the workflow run's properties for the next jobs).

Arguments and shipping: `playcount.integrations.glue`, docs/glue.md.
"""

from playcount.integrations.glue import main, validate_job

main(validate_job)
