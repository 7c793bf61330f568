"""AWS Glue job: transform the accepted streams of the run `--run-id` and compute its KPIs.

Arguments and shipping: `playcount.integrations.glue`, docs/glue.md.
"""

from playcount.integrations.glue import main, transform_job

main(transform_job)
