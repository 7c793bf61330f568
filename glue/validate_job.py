"""AWS Glue job: discover and validate the landing zone (the run `--run-id`, or a new one).

Arguments and shipping: `playcount.integrations.glue`, README "On Spark / AWS Glue".
"""

from playcount.integrations.glue import main, validate_job

main(validate_job)
